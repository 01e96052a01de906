"""Item analysis (issue 23, point 4): the statistics against values computed by hand on a small synthetic
class, items.csv, and report.html in Chromium at 1280 and 390 px (nothing sticks out of the viewport,
every plot is there, no request leaves the page). Screenshots: _build/screenshots/report_<width>.png."""

import csv
import json
import math
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest

from autograder import items, keys
from autograder.report import write_student
from autograder.result import Failure, QuestionScore, Result
from conftest import REPO

SCREENSHOTS = REPO / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
POINTS = {"q1.a": 1.0, "q1.b": 2.0, "q2.c": 1.0, "q2.d": 1.0}


def make_result(student: str, passed: set[str], details: dict[str, str] | None = None, seconds=None,
                graded: bool = True, points: dict[str, float] = POINTS) -> Result:
    """A result as grading writes it: every test passed or failed, points summed per question."""
    details = details or {}
    questions = {}
    for key, value in points.items():
        qid = key.split(".")[0]
        q = questions.setdefault(qid, QuestionScore(0.0, 0.0))
        q.max += value
        if key in passed and graded:
            q.points += value
            q.passed.append(key)
        elif graded:
            q.failed.append(Failure(key, value, f"{key} failed.", details.get(key, "")))
    for qid, q in questions.items():
        q.seconds = None if seconds is None else seconds.get(qid)
    total = sum(q.points for q in questions.values()) if graded else None
    return Result(student=student, submission=f"{student}.ipynb", homework="hw9_synthetic", sha256="0" * 64,
                  source_sha256="1" * 64, max_points=sum(points.values()), manual_max=0.0,
                  status="ok" if graded else "grader failure, not graded: the sandbox did not start",
                  total=total, questions=questions, written={}, graded=graded)


def small_class() -> list[Result]:
    """Totals 5, 2, 3, 2 (mean 3, population variance 1.5); s5 was not graded and counts nowhere."""
    return [
        make_result("s1", {"q1.a", "q1.b", "q2.c", "q2.d"}, seconds={"q1": 1.0, "q2": 0.5}),
        make_result("s2", {"q1.a", "q2.d"}, {"q1.b": "expected 10, got 3", "q2.c": "=HYPERLINK(x)"},
                    seconds={"q1": 2.0, "q2": 0.5}),
        make_result("s3", {"q1.b", "q2.d"}, {"q1.a": "shape (2, 5)\nmore lines", "q2.c": "=HYPERLINK(x)"},
                    seconds={"q1": 3.0, "q2": 1.5}),
        make_result("s4", {"q2.c", "q2.d"}, {"q1.a": "NameError: x", "q1.b": "expected 10, got 3"},
                    seconds={"q1": 4.0, "q2": 2.5}),
        make_result("s5", set(), graded=False),
    ]


def test_point_biserial_matches_hand_computed_values_and_is_nan_without_variance():
    totals = [5, 2, 3, 2]
    # test a: passed by s1, s2: M1 = 3.5, M0 = 2.5, p = 1/2, s = sqrt(1.5): r = 1 / sqrt(1.5) / 2 = 1/sqrt(6)
    assert items.point_biserial([True, True, False, False], totals) == pytest.approx(1 / math.sqrt(6))
    # test b: passed by s1, s3: M1 = 4, M0 = 2: r = 2/sqrt(6)
    assert items.point_biserial([True, False, True, False], totals) == pytest.approx(2 / math.sqrt(6))
    # a test passed only by the weakest is negative; it is Pearson's r of the two columns
    column = [False, True, False, False]
    assert items.point_biserial(column, totals) == pytest.approx(np.corrcoef(column, totals)[0, 1])
    assert items.point_biserial(column, totals) < 0
    assert math.isnan(items.point_biserial([True] * 4, totals)), "everyone passed: no variance"
    assert math.isnan(items.point_biserial([False] * 4, totals)), "nobody passed: no variance"
    assert math.isnan(items.point_biserial([True, False, True, False], [3, 3, 3, 3])), "equal totals"
    assert math.isnan(items.point_biserial([True], [3])), "one student"


def test_analysis_of_a_small_class_matches_hand_computed_values():
    analysis = items.analyse(small_class())
    assert analysis.totals == [5, 2, 3, 2] and analysis.not_graded == ["s5"] and analysis.students == 5
    tests = {t.key: t for t in analysis.tests}
    assert [t.key for t in analysis.tests] == ["q1.a", "q1.b", "q2.c", "q2.d"]
    assert {k: t.pass_rate for k, t in tests.items()} == {"q1.a": 0.5, "q1.b": 0.5, "q2.c": 0.5, "q2.d": 1.0}
    assert tests["q1.a"].discrimination == pytest.approx(1 / math.sqrt(6))
    assert tests["q1.b"].discrimination == pytest.approx(2 / math.sqrt(6))
    assert tests["q2.c"].discrimination == pytest.approx(1 / math.sqrt(6))    # passed by s1 and s4
    assert math.isnan(tests["q2.d"].discrimination)
    assert tests["q1.b"].failures == [("expected 10, got 3", 2)]
    assert tests["q1.a"].failures == [("NameError: x", 1), ("shape (2, 5)", 1)], "first line, ties by text"
    assert tests["q2.d"].failures == []
    q1, q2 = analysis.questions
    assert (q1.id, q1.max, q1.full, q1.full_rate, q1.mean_points, q1.mean_share) == ("q1", 3.0, 1, 0.25, 1.5, 0.5)
    assert (q2.id, q2.max, q2.full, q2.full_rate, q2.mean_points, q2.mean_share) == ("q2", 2.0, 2, 0.5, 1.5, 0.75)
    assert q1.seconds == [1.0, 2.0, 3.0, 4.0] and q2.seconds == [0.5, 0.5, 1.5, 2.5]


def test_items_csv_rows_say_n_a_and_never_start_a_formula(tmp_path):
    items.write_csv(items.analyse(small_class()), tmp_path / "items.csv")
    rows = {r["item"]: r for r in csv.DictReader(open(tmp_path / "items.csv", encoding="utf-8"))}
    assert rows["q2.d"]["discrimination"] == "n/a" and rows["q2.d"]["pass_rate"] == "1"
    assert rows["q1.b"]["discrimination"] == f"{round(2 / math.sqrt(6), 3):g}"
    assert rows["q1.b"]["top_failure"] == "expected 10, got 3" and rows["q1.b"]["top_failure_count"] == "2"
    assert rows["q2.c"]["top_failure"] == "'=HYPERLINK(x)", "a formula-like message gets a leading '"
    assert rows["q1"]["kind"] == "question" and rows["q1"]["median_seconds"] == "2.5"
    assert rows["q1"]["full_marks_rate"] == "0.25" and rows["q2"]["mean_share"] == "0.75"


def graded_folder(tmp_path, results: list[Result]):
    """A folder laid out as grading leaves it: the key and signed results."""
    out = tmp_path / "grades"
    key = keys.grader_key(out)
    for r in results:
        write_student(r.signed(key), out)
    return out


def test_report_command_reads_signed_results_and_refuses_an_edited_one(tmp_path):
    out = graded_folder(tmp_path, small_class())
    done = subprocess.run([sys.executable, "-m", "autograder", "report", str(out)], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert (out / "report.html").stat().st_size > 5000 and (out / "items.csv").exists()
    assert str(out / "report.html") in done.stdout
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 4 and "http://" not in page.replace("http://www.w3.org/", "")
    assert "<script" not in page and "<link" not in page and "src=" not in page
    edited = json.loads((out / "results" / "s2.json").read_text())
    edited["total"] = 5.0
    (out / "results" / "s2.json").write_text(json.dumps(edited))
    done = subprocess.run([sys.executable, "-m", "autograder", "report", str(out)], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 2 and "s2.json" in done.stderr and "does not verify" in done.stderr


def realistic_class(n: int = 40) -> list[Result]:
    """A class of ``n`` with eight tests of varied difficulty and long judge messages, for the page."""
    rng = random.Random(23)
    points = {"q1.shape": 1.0, "q1.layers": 2.0, "q1.parameters_match_paper": 2.0, "q2.lrn_formula": 2.0,
              "q2.lrn_defaults": 1.0, "q3.dropout_train_vs_eval": 2.0, "q3.overlapping_pooling_shape": 1.0,
              "q4.measurement_within_tolerance": 3.0}
    difficulty = dict(zip(points, [0.95, 0.8, 0.55, 0.6, 0.9, 0.4, 0.75, 0.3]))
    results = []
    for i in range(n):
        skill = rng.random()
        passed = {k for k, d in difficulty.items() if rng.random() < d * (0.5 + skill)}
        details = {k: rng.choice([f"expected logits of shape (2, 10), got {rng.choice(['(2, 1000)', '(10,)'])}",
                                  "NameError: name 'AlexNet' is not defined",
                                  "an unbroken string of judge output " + "x" * 140])
                   for k in points if k not in passed}
        seconds = {q: round(rng.uniform(0.2, 6.0), 2) for q in ("q1", "q2", "q3", "q4")}
        results.append(make_result(f"student_{i:02d}", passed, details, seconds, points=points))
    results.append(make_result("student_zz", set(), graded=False, points=points))
    return results


OVERFLOW = """() => {
  const width = document.documentElement.clientWidth, problems = [];
  if (document.documentElement.scrollWidth > width + 1) problems.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
  for (const el of document.body.querySelectorAll('*')) {
    let inside = false;   // a box that scrolls on its own may hold wider content
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement)
      if (['auto', 'scroll'].includes(getComputedStyle(up).overflowX)) { inside = true; break; }
    if (inside) continue;
    const box = el.getBoundingClientRect();
    if (box.width && (box.right > width + 1 || box.left < -1))
      problems.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${el.className?.baseVal ?? el.className} sticks out: ${Math.round(box.left)}..${Math.round(box.right)} of ${width}`);
  }
  return problems.slice(0, 10);
}"""

PLOTS = """() => [...document.querySelectorAll('svg.plot')].map(s => {
  const b = s.getBoundingClientRect(); return [s.id, Math.round(b.width), Math.round(b.height), s.querySelectorAll('path, text').length];
})"""


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (Debian) to run the report page test")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


def open_page(browser, path, width: int):
    mobile = width < 960
    context = browser.new_context(viewport={"width": width, "height": 900}, is_mobile=mobile, has_touch=mobile,
                                  device_scale_factor=1)
    page = context.new_page()
    outside = []
    page.route("**/*", lambda route: route.continue_() if route.request.url == path.as_uri()
               else (outside.append(route.request.url), route.abort()))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return context, page, outside


@pytest.mark.parametrize("width", [1280, 390])
def test_report_page_fits_the_viewport_shows_every_plot_and_requests_nothing(tmp_path, browser, width):
    out = graded_folder(tmp_path, realistic_class())
    page_path, _ = items.write(items.load(out), out)
    context, page, outside = open_page(browser, page_path, width)
    try:
        plots = page.evaluate(PLOTS)
        assert [p[0] for p in plots] == ["plot-histogram", "plot-pass-rates", "plot-discrimination", "plot-seconds"]
        assert all(w > 300 and h > 150 and shapes > 20 for _, w, h, shapes in plots), plots
        assert all(w <= width for _, w, _, _ in plots)
        assert page.evaluate(OVERFLOW) == []
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert page.evaluate(OVERFLOW) == [], "open failure lists wrap too"
        scrolls = page.evaluate("[...document.querySelectorAll('.scroll')].map(e => e.scrollWidth > e.clientWidth)")
        assert len(scrolls) == 2 and (width > 960 or any(scrolls)), "the wide table scrolls in its own box on a phone"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"report_{width}.png"), full_page=True)
        assert outside == []
    finally:
        context.close()


def test_the_page_checks_fail_on_a_page_that_sticks_out_or_asks_the_network(tmp_path, browser):
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><meta name=viewport content='width=device-width'>"
                      "<div style='width:900px'>wide</div><img src='https://cdn.example.com/x.png'>")
    context, page, outside = open_page(browser, broken, 390)
    try:
        problems = page.evaluate(OVERFLOW)
        assert any("sticks out" in p for p in problems) and any("sideways" in p for p in problems)
        assert outside == ["https://cdn.example.com/x.png"]
        assert page.evaluate(PLOTS) == []
    finally:
        context.close()
