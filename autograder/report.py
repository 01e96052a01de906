"""What grading writes: per-student JSON and Markdown feedback, the written answers to grade by hand,
grades.csv, a summary and a histogram.

A result with ``"graded": false`` (the grader failed twice on it) is listed as "not graded" and counts
in no mean or histogram: it is never a zero. Every grades.csv cell that a spreadsheet would read as a
formula (it starts with ``= + - @``, a tab or a carriage return) gets a leading ``'``, as OWASP advises.

A written answer is the student's text: it is shown only inside a fenced code block whose fence is longer
than any run of backticks in it, so no Markdown or HTML in it is rendered (grading made it free of
control and bidi characters already, and capped it).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from .result import Result, WrittenAnswer, save


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value) -> str:
    """``value`` as a CSV cell no spreadsheet evaluates: ``'`` before a formula's first character."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def points(value) -> str:
    return "not graded" if value is None else f"{value:g}"


def write_student(result: Result, out: Path) -> None:
    """``results/<student>.json``, ``feedback/<student>.md`` and, with written answers, ``written/<student>.md``."""
    (out / "results").mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    save(result, out / "results" / f"{result.student}.json")
    (out / "feedback" / f"{result.student}.md").write_text(feedback(result), encoding="utf-8")
    if result.written:
        (out / "written").mkdir(parents=True, exist_ok=True)
        (out / "written" / f"{result.student}.md").write_text(written_sheet(result), encoding="utf-8")


def quoted(text: str) -> list[str]:
    """``text`` as a fenced code block that nothing inside can close: shown verbatim, never rendered."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "text", *text.rstrip("\n").split("\n"), fence]


def _written_lines(qid: str, entry: WrittenAnswer, heading: str = "##") -> list[str]:
    lines = [f"{heading} {qid}: graded by hand ({entry.max:g} points, not in the score above)"]
    if entry.missing:
        lines.append("- No answer: the written-answer cell is missing from the notebook.")
    elif entry.blank:
        lines.append("- No answer: the cell is blank or still says the placeholder.")
    else:
        lines.append(f"Your answer as collected ({entry.chars} characters):")
        lines += ["", *quoted(entry.text)]
        if entry.truncated:
            lines.append(f"- Only the first {entry.kept} of {entry.chars} characters were kept.")
    return lines + [""]


def written_sheet(result: Result) -> str:
    """One student's written answers, for the person grading them by hand."""
    lines = [f"# Written answers: {result.homework}, {result.student}", "",
             f"Submission sha256 `{result.sha256}`. Manual points available: {result.manual_max:g}.", ""]
    for qid, entry in result.written.items():
        lines += _written_lines(qid, entry)
    return "\n".join(lines)


def feedback(result: Result) -> str:
    """Passed or failed per question, with the instructor's messages: never a judge's code, detail or inputs."""
    lines = [f"# Feedback on {result.homework} for {result.student}", ""]
    if not result.scored:
        return "\n".join(lines + [
            "**Not graded yet.** The grader failed on this submission twice for reasons of its own (not "
            "your code's), so no score was given. Your instructor will grade it again; you need not do "
            "anything.", ""])
    lines += [f"**Score: {result.total:g} / {result.max_points:g}**", ""]
    if result.manual_max:
        lines += [f"Written answers, worth {result.manual_max:g} more points, are graded by hand.", ""]
    if result.status != "ok":
        lines += [f"Note: {result.status}.", ""]
    for qid, q in result.questions.items():
        mark = "passed" if not q.failed else ("partly passed" if q.passed else "failed")
        lines.append(f"## {qid}: {q.points:g} / {q.max:g} ({mark})")
        for problem in q.rule_violations or []:
            lines.append(f"- Your answer breaks this question's own-code rule: {problem[:200]} (no points)")
        if q.answer_error:
            lines.append(f"- Your answer cell raised an error: `{q.answer_error[:300]}`")
        for failure in q.failed:
            lines.append(f"- {failure.message} (−{failure.points:g})")
        lines.append("")
    for qid, entry in result.written.items():
        lines += _written_lines(qid, entry)
    return "\n".join(lines)


def _nothing_to_grade(result: Result, qid: str) -> bool:
    entry = result.written.get(qid)
    return entry is None or entry.blank


def manual_cell(result: Result, qid: str, points: float) -> str:
    """A written question's grades.csv entry: "manual", its points, and whether there is anything to grade."""
    return f"manual (max {points:g}{', blank' if _nothing_to_grade(result, qid) else ''})"


def write_grades_csv(results: list[Result], columns, path: Path, late=None) -> None:
    """The automatic grades, one row per student (``write_summary``'s grades.csv; ``finalize`` keeps a copy
    as grades_automatic.csv). With ``late`` (a ``late.Late``) the columns submitted_at, late_days, penalty
    and final come before status, ``final`` being the automatic total less the penalty."""
    manual = [q for q in columns if q.manual]
    late_columns = list(late_columns_of(late))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *(q.id for q in columns), "total", "max",
                         *(["manual_max"] if manual else []), *late_columns, "status"])
        for r in results:
            if r.scored:
                cells = [manual_cell(r, q.id, q.points) if q.manual else points(r.questions[q.id].points)
                         for q in columns]
            else:
                cells = ["not graded"] * len(columns)
            row = [r.student, *cells, points(r.total), f"{r.max_points:g}",
                   *([f"{sum(q.points for q in manual):g}"] if manual else []),
                   *(late.cells(r.student, r.total if r.scored else None) if late else []), r.status]
            writer.writerow([spreadsheet_safe(cell) for cell in row])


def late_columns_of(late) -> tuple[str, ...]:
    from .late import COLUMNS
    return COLUMNS if late is not None else ()


def write_summary(results: list[Result], columns, out: Path, late=None) -> None:
    """grades.csv (one row per student), summary.json and a histogram of total scores.

    ``columns``: every question in notebook order, each with ``id``, ``points`` and ``manual``. A written
    (manual) question's column says "manual (max N)" (", blank" when there is nothing to grade); its points
    are in no total: ``max`` is the automatic maximum and ``manual_max`` what grading by hand can add.
    ``late``: see ``write_grades_csv``."""
    questions = [q for q in columns if not q.manual]
    manual = [q for q in columns if q.manual]
    ids = [q.id for q in questions]
    write_grades_csv(results, columns, out / "grades.csv", late)
    scored = [r for r in results if r.scored]     # a grader failure is in no mean and no histogram
    count = max(len(scored), 1)
    summary = {
        "students": len(results),
        "graded": len(scored),
        "not_graded": sorted(r.student for r in results if not r.scored),
        "mean_total": sum(r.total for r in scored) / count,
        "max_points": sum(q.points for q in questions),
        "mean_per_question": {q: sum(r.questions[q].points for r in scored) / count for q in ids},
        "max_per_question": {q.id: q.points for q in questions},
        "not_ok": {r.student: r.status for r in results if r.status != "ok"},
    }
    if manual:
        summary["manual_max"] = sum(q.points for q in manual)
        summary["manual_per_question"] = {q.id: q.points for q in manual}
        summary["written_answered"] = {q.id: sum(not _nothing_to_grade(r, q.id) for r in scored) for q in manual}
    if late is not None:
        summary["late"] = {"deadline": late.deadline.isoformat(), "policy": late.policy.text,
                           "late_students": sorted(s for s in late.submitted if late.days(s))}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.hist([r.total for r in scored], bins=range(0, int(summary["max_points"]) + 2), edgecolor="black", align="left")
    missing = f", {len(results) - len(scored)} not graded" if len(scored) < len(results) else ""
    left.set(xlabel="total points", ylabel="students", title=f"{len(scored)} submissions graded{missing}")
    right.bar(ids, [summary["mean_per_question"][q] for q in ids], label="mean")
    right.bar(ids, [summary["max_per_question"][q] for q in ids], fill=False, edgecolor="black", label="max")
    right.set(ylabel="points", title="mean score per question")
    right.legend()
    fig.tight_layout()
    fig.savefig(out / "histogram.png", dpi=100)
    plt.close(fig)
