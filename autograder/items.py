"""Item analysis of one graded class: ``python -m autograder report OUT`` writes ``OUT/report.html`` and
``OUT/items.csv`` from the signed results in ``OUT/results/`` (``grade`` and ``merge`` write them too).

The class is the *scored* results only (graded, with a total): a grader failure is in no statistic, as in
``report.write_summary``. With n such students, for each test t (``q1.shape``) and question q:

- **pass rate** of t: the share of the n students who passed t (the test's key is in ``passed``).
- **full-marks rate** of q: the share who got all of q's points; **mean share** of q: mean points / max.
- **discrimination** of t: the point-biserial correlation between passing t (1 or 0) and the student's
  total automatic score, r = (M1 - M0) / s * sqrt(p (1 - p)), where p is t's pass rate, M1 and M0 the mean
  totals of those who passed and failed it, and s the population standard deviation (divisor n) of the
  totals: exactly Pearson's r of the two columns. When it is undefined (everyone passed t, nobody did,
  every total is equal, or n < 2) it is NaN, written ``n/a`` on the page and in the CSV, never 0.
- **failure messages** of t: what the judge found (the first line of each failure's ``detail``, for the
  instructor only; "own-code rule broken" when the question's rule zeroed it), counted over students,
  the most common first.
- **seconds** of q: per student, the run time of q's answer cells and probes (``QuestionScore.seconds``,
  measured by the harness); the page shows their spread, the CSV the median and the maximum.

The page is one file that needs nothing else: its plots are inline SVG drawn by matplotlib, its style is
inline, it loads no script, font or image. Wide tables scroll inside their own box, so a phone's page
never scrolls sideways.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import nbformat

from . import cells
from .report import spreadsheet_safe
from .result import Result, read_folder

TEMPLATE = Path(__file__).with_name("templates") / "report.html"
TOP_FAILURES = 5          # failure messages listed per test
MESSAGE_CHARS = 160       # of one failure message, on the page and in the CSV
NA = "n/a"


class ReportError(ValueError):
    pass


# --------------------------------------------------------------------------- statistics

def point_biserial(passed: list[bool], totals: list[float]) -> float:
    """Pearson's r of a 0/1 column and the totals; NaN when either column has no variance (or n < 2)."""
    n = len(passed)
    if n != len(totals):
        raise ValueError("one pass/fail per total")
    if n < 2:
        return math.nan
    p = sum(passed) / n
    mean = sum(totals) / n
    s = math.sqrt(sum((t - mean) ** 2 for t in totals) / n)
    if p in (0.0, 1.0) or s == 0.0:
        return math.nan
    m1 = sum(t for t, ok in zip(totals, passed) if ok) / sum(passed)
    m0 = sum(t for t, ok in zip(totals, passed) if not ok) / (n - sum(passed))
    return (m1 - m0) / s * math.sqrt(p * (1 - p))


@dataclass
class TestItem:
    key: str                 # "q1.shape"
    question: str
    points: float | None     # from the instructor source, or the failures' record (None: never failed, no source)
    students: int
    passed: int
    discrimination: float
    failures: list[tuple[str, int]] = field(default_factory=list)   # (message, students), most common first

    @property
    def pass_rate(self) -> float:
        return self.passed / self.students if self.students else math.nan


@dataclass
class QuestionItem:
    id: str
    max: float
    students: int
    full: int                # students with every point of it
    mean_points: float
    seconds: list[float]     # one per student whose run recorded it

    @property
    def full_rate(self) -> float:
        return self.full / self.students if self.students else math.nan

    @property
    def mean_share(self) -> float:
        return self.mean_points / self.max if self.students and self.max else math.nan


@dataclass
class Analysis:
    homework: str
    students: int            # every result, scored or not
    totals: list[float]      # the scored ones'
    max_points: float
    questions: list[QuestionItem]
    tests: list[TestItem]
    not_graded: list[str]


def _message(failure, question) -> str:
    first = (failure.detail or "").strip().splitlines()
    text = first[0].strip() if first else ""
    if question.rule_violations and not text:
        text = "own-code rule broken"
    if text.endswith(":"):   # "assertion:" with no message of its own: the instructor's message says which
        text = f"{text} ({failure.message})" if failure.message else text
    text = text or failure.message or "(no detail)"
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 1] + "…"


def test_order(results: list[Result], source: list[cells.Question] | None = None) -> dict[str, list[tuple[str, float | None]]]:
    """Question id → its tests (key, points) in notebook order: from the instructor source when given, else
    as the results name them (failed tests carry their points; the order is then by name)."""
    if source:
        return {q.id: [(t.key, t.points) for t in q.tests] for q in source}
    order: dict[str, dict[str, float | None]] = {}
    for r in results:
        for qid, q in r.questions.items():
            entry = order.setdefault(qid, {})
            for key in q.passed:
                entry.setdefault(key, None)
            for f in q.failed:
                if entry.get(key := f.test) is None:
                    entry[key] = f.points
    return {qid: sorted(tests.items()) for qid, tests in order.items()}


def analyse(results: list[Result], source: list[cells.Question] | None = None) -> Analysis:
    """Every statistic of the page and the CSV (definitions in the module's docstring)."""
    scored = [r for r in results if r.scored]
    totals = [float(r.total) for r in scored]
    order = test_order(scored, source)
    qids = list(order) or list(dict.fromkeys(q for r in scored for q in r.questions))
    questions, tests = [], []
    for qid in qids:
        mine = [r.questions[qid] for r in scored if qid in r.questions]
        maximum = next((q.max for q in mine), sum(p or 0 for _, p in order.get(qid, [])))
        questions.append(QuestionItem(
            qid, maximum, len(mine), sum(1 for q in mine if q.points >= q.max),
            sum(q.points for q in mine) / len(mine) if mine else math.nan,
            [q.seconds for q in mine if q.seconds is not None]))
        for key, points in order.get(qid, []):
            passed = [key in r.questions[qid].passed if qid in r.questions else False for r in scored]
            messages = Counter(_message(f, r.questions[qid]) for r in scored if qid in r.questions
                               for f in r.questions[qid].failed if f.test == key)
            tests.append(TestItem(key, qid, points, len(scored), sum(passed), point_biserial(passed, totals),
                                  sorted(messages.items(), key=lambda kv: (-kv[1], kv[0]))))
    max_points = scored[0].max_points if scored else (results[0].max_points if results else 0.0)
    return Analysis(results[0].homework if results else "", len(results), totals, max_points, questions, tests,
                    sorted(r.student for r in results if not r.scored))


# --------------------------------------------------------------------------- reading a graded folder

def load(out: Path) -> list[Result]:
    """The signed results of ``out/results/`` (a graded or merged folder), verified under ``out``'s key;
    refuses the folder when any result does not verify or cannot be read."""
    out = Path(out)
    _, results, unusable = read_folder(out)
    if not results and not unusable:
        raise ReportError(f"{out / 'results'} holds no results: grade into {out} first")
    if unusable:
        bad = [f"{path.name}: {error}" for path, error in unusable.items()]
        raise ReportError(f"{len(bad)} result(s) in {out / 'results'} cannot be used, so no report was written "
                          f"(grade again): " + "; ".join(bad[:5]))
    return list(results.values())


def source_questions(results: list[Result], source_dir: Path | None = None) -> list[cells.Question] | None:
    """The homework's questions from its instructor notebook, when that notebook is the one graded."""
    from .grade import find_source
    from .release import SOURCE_DIR
    import hashlib
    if not results:
        return None
    try:
        path = find_source(results[0].homework, source_dir or SOURCE_DIR)
        data = path.read_bytes()
    except (FileNotFoundError, OSError):
        return None
    if hashlib.sha256(data).hexdigest() != results[0].source_sha256:
        return None
    return cells.questions(nbformat.reads(data.decode(), as_version=4), str(path))


# --------------------------------------------------------------------------- the CSV

CSV_FIELDS = ["kind", "item", "question", "points", "students", "passed", "pass_rate", "full_marks_rate",
              "mean_share", "discrimination", "median_seconds", "max_seconds", "top_failure", "top_failure_count"]


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NA
    return f"{round(value, digits):g}"


def write_csv(analysis: Analysis, path: Path) -> None:
    """``items.csv``: one row per question, then one per test (formula-like cells get a leading ')."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for q in analysis.questions:
            writer.writerow(["question", q.id, q.id, _num(q.max), q.students, q.full, "", _num(q.full_rate),
                             _num(q.mean_share), "", _num(statistics.median(q.seconds) if q.seconds else None, 2),
                             _num(max(q.seconds) if q.seconds else None, 2), "", ""])
        for t in analysis.tests:
            top, count = t.failures[0] if t.failures else ("", 0)
            writer.writerow([spreadsheet_safe(c) for c in
                             ["test", t.key, t.question, _num(t.points), t.students, t.passed, _num(t.pass_rate), "",
                              "", _num(t.discrimination), "", "", top, count or ""]])


# --------------------------------------------------------------------------- the page

_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf"]


def _svg(fig, name: str, label: str) -> str:
    """The figure as an inline <svg> that scales with its box (no fixed width or height), text as text."""
    import matplotlib
    import matplotlib.pyplot as plt
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"autograder-report-{name}"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text[text.index("<svg"):], flags=re.S)
    head, rest = text.split(">", 1)
    head = " ".join(part for part in head.split(" ") if not part.startswith(("width=", "height=")))
    head = head.replace("<svg", f'<svg class="plot" id="plot-{name}" role="img" aria-label="{html.escape(label)}"', 1)
    return head + ">" + rest


def _figure(height: float):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.6, height))
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _colour(analysis: Analysis, qid: str) -> str:
    ids = [q.id for q in analysis.questions]
    return _COLOURS[ids.index(qid) % len(_COLOURS)] if qid in ids else "#777777"


def plot_histogram(analysis: Analysis) -> str:
    fig, ax = _figure(3.0)
    top = max(analysis.max_points, max(analysis.totals, default=0.0))
    width = 1.0 if top <= 40 else math.ceil(top / 20)
    edges = [i * width for i in range(int(math.ceil(top / width)) + 2)]
    ax.hist(analysis.totals, bins=edges, color="#4c72b0", edgecolor="white", align="left" if width == 1 else "mid")
    ax.set(xlabel="total automatic points", ylabel="students",
           title=f"Scores: {len(analysis.totals)} graded" +
                 (f", {len(analysis.not_graded)} not graded" if analysis.not_graded else ""))
    ax.yaxis.get_major_locator().set_params(integer=True)
    return _svg(fig, "histogram", "Histogram of total scores")


def _bar_height(n: int) -> float:
    return 1.3 + 0.5 * max(n, 1)


def _labelled_bars(ax, labels: list[str], values: list[float], colours: list[str], texts: list[str],
                   xlim: tuple[float, float]) -> None:
    """Horizontal bars, each with its name on its own line above it: long test names take no width, so
    the plot stays legible when a phone scales it down."""
    span = xlim[1] - xlim[0]
    for i, (label, value, colour, text) in enumerate(zip(labels, values, colours, texts)):
        ax.barh(i, value, height=0.42, color=colour)
        ax.text(xlim[0] + 0.005 * span, i - 0.26, label, va="bottom", ha="left", fontsize=11)
        ax.text(max(value, 0.0) + 0.01 * span, i, text, va="center", fontsize=10)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_ylim(len(labels) - 0.5, -0.95)
    ax.set_xlim(*xlim)


def plot_pass_rates(analysis: Analysis) -> str:
    tests = analysis.tests
    fig, ax = _figure(_bar_height(len(tests)))
    rates = [0.0 if math.isnan(t.pass_rate) else 100 * t.pass_rate for t in tests]
    _labelled_bars(ax, [t.key for t in tests], rates, [_colour(analysis, t.question) for t in tests],
                   [f"{r:.0f}%" for r in rates], (0, 112))
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set(xlabel="students who passed (%)", title="Pass rate per test")
    return _svg(fig, "pass-rates", "Pass rate of each test")


def plot_discrimination(analysis: Analysis) -> str:
    tests = analysis.tests
    fig, ax = _figure(_bar_height(len(tests)))
    values = [t.discrimination for t in tests]
    _labelled_bars(ax, [t.key for t in tests], [0.0 if math.isnan(v) else v for v in values],
                   ["#bbbbbb" if math.isnan(v) else ("#c44e52" if v < 0.2 else "#55a868") for v in values],
                   [NA if math.isnan(v) else f"{v:.2f}" for v in values], (-1, 1.2))
    ax.axvline(0.2, color="#888888", linestyle=":", linewidth=1)
    ax.axvline(0, color="#444444", linewidth=0.8)
    ax.set_xticks([-1, -0.5, 0, 0.5, 1])
    ax.set(xlabel="point-biserial r with the total (dotted: 0.2)", title="Discrimination per test")
    return _svg(fig, "discrimination", "Discrimination index of each test")


def plot_seconds(analysis: Analysis) -> str:
    timed = [q for q in analysis.questions if q.seconds]
    fig, ax = _figure(_bar_height(len(timed)))
    if timed:
        ax.boxplot([q.seconds for q in timed], orientation="horizontal", widths=0.5, showfliers=True)
        ax.set_yticks(range(1, len(timed) + 1), [q.id for q in timed])
        ax.invert_yaxis()
        ax.set_xlim(left=0)
    else:
        ax.text(0.5, 0.5, "no per-question times recorded\n(graded by an earlier version)", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set(xlabel="seconds (answer cells + probes), per student", title="Time per question")
    return _svg(fig, "seconds", "Time each question's cells took")


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _rate(value: float) -> str:
    return NA if math.isnan(value) else f"{100 * value:.0f}%"


def _tables(analysis: Analysis) -> tuple[str, str, str]:
    qrows = "".join(
        f"<tr><th scope='row'>{_esc(q.id)}</th><td>{q.max:g}</td><td>{_rate(q.full_rate)}</td>"
        f"<td>{_rate(q.mean_share)}</td><td>{_num(statistics.median(q.seconds) if q.seconds else None, 1)}</td>"
        f"<td>{_num(max(q.seconds) if q.seconds else None, 1)}</td></tr>" for q in analysis.questions)
    trows = "".join(
        f"<tr><th scope='row'>{_esc(t.key)}</th><td>{_num(t.points)}</td><td>{t.passed} / {t.students}</td>"
        f"<td>{_rate(t.pass_rate)}</td><td>{_num(t.discrimination, 2)}</td></tr>" for t in analysis.tests)
    failures = []
    for t in analysis.tests:
        if not t.failures:
            continue
        items = "".join(f"<li><span class='count'>{count}×</span> <code>{_esc(text)}</code></li>"
                        for text, count in t.failures[:TOP_FAILURES])
        more = len(t.failures) - TOP_FAILURES
        failures.append(f"<details><summary><b>{_esc(t.key)}</b>: {t.students - t.passed} failed, "
                        f"{len(t.failures)} distinct message{'s' * (len(t.failures) != 1)}</summary>"
                        f"<ol>{items}</ol>{f'<p>and {more} more</p>' if more > 0 else ''}</details>")
    return qrows, trows, "".join(failures) or "<p>No test failed.</p>"


def render(analysis: Analysis) -> str:
    """The whole page as one string (no external resource)."""
    qrows, trows, failures = _tables(analysis)
    totals = analysis.totals
    facts = [("graded", f"{len(totals)} of {analysis.students}"),
             ("mean", f"{statistics.fmean(totals):.2f}" if totals else NA),
             ("median", f"{statistics.median(totals):g}" if totals else NA),
             ("maximum", f"{analysis.max_points:g} points")]
    not_graded = (f"<p class='warn'>Not graded (grader failures, in no statistic): "
                  f"{_esc(', '.join(analysis.not_graded))}</p>" if analysis.not_graded else "")
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        homework=_esc(analysis.homework), facts="".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in facts),
        not_graded=not_graded, histogram=plot_histogram(analysis), pass_rates=plot_pass_rates(analysis),
        discrimination=plot_discrimination(analysis), seconds=plot_seconds(analysis),
        question_rows=qrows, test_rows=trows, failures=failures)


def write(results: list[Result], out: Path, source: list[cells.Question] | None = None) -> tuple[Path, Path]:
    """``out/report.html`` and ``out/items.csv`` for ``results``."""
    if source is None:
        source = source_questions(results)
    analysis = analyse(results, source)
    out = Path(out)
    write_csv(analysis, out / "items.csv")
    page = out / "report.html"
    partial = page.with_name(page.name + ".partial")
    partial.write_text(render(analysis), encoding="utf-8")
    partial.replace(page)
    return page, out / "items.csv"
