"""Issue 23: hand grading (manual, finalize), late work (--deadline, --late-policy) and rejudge.

Pure functions first; then one real, tiny grading run (a one-question instructor notebook with a written
question, graded in the sandbox in a few seconds) that manual, finalize and rejudge work on."""

import csv
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest

from autograder import cli, grade, late, manual, release, stored
from autograder.result import read
from test_autograder import needs_bwrap

DEADLINE = datetime(2026, 3, 1, 23, 59, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- late work, pure

def test_late_days_at_the_boundaries():
    assert late.late_days(DEADLINE, DEADLINE) == 0, "exactly at the deadline is on time"
    assert late.late_days(DEADLINE - timedelta(hours=5), DEADLINE) == 0
    assert late.late_days(DEADLINE + timedelta(seconds=1), DEADLINE) == 1
    assert late.late_days(DEADLINE + timedelta(days=1), DEADLINE) == 1
    assert late.late_days(DEADLINE + timedelta(days=1, seconds=1), DEADLINE) == 2
    other_zone = DEADLINE.astimezone(timezone(timedelta(hours=9)))
    assert late.late_days(other_zone, DEADLINE) == 0, "the same instant in another zone is on time"


def test_late_policies_are_parsed_strictly_and_capped():
    ten = late.parse_policy("10%/day,max=50%")
    assert [late.penalty(8, days, ten) for days in (0, 1, 2, 5, 9)] == [0, 0.8, 1.6, 4, 4]
    assert late.penalty(8, 30, late.parse_policy("10%/day")) == 8, "never more than what was earned"
    assert late.penalty(8, 1, late.parse_policy("zero")) == 8 and late.penalty(8, 0, late.parse_policy("zero")) == 0
    assert late.penalty(8, 3, late.parse_policy("none")) == 0
    assert late.penalty(0, 3, ten) == 0
    for bad in ["10", "10%", "10%/week", "10 %/day", "-5%/day", "0%/day", "150%/day", "10%/day,max=",
                "10%/day,max=50", "10%/day;max=50%", "zero,max=50%", "ten%/day", ""]:
        with pytest.raises(late.LateError, match="late-policy"):
            late.parse_policy(bad)


def test_a_deadline_needs_a_timezone():
    assert late.parse_deadline("2026-03-01T23:59:00Z") == DEADLINE
    assert late.parse_deadline("2026-03-02T00:59:00+01:00") == DEADLINE
    for naive in ["2026-03-01T23:59:00", "2026-03-01"]:
        with pytest.raises(late.LateError, match="no timezone"):
            late.parse_deadline(naive)
    with pytest.raises(late.LateError, match="not an ISO 8601"):
        late.parse_deadline("March 1st")


def _late(submitted: dict, policy="10%/day,max=50%") -> late.Late:
    return late.Late(DEADLINE, late.parse_policy(policy),
                     {s: late.Submitted(DEADLINE + delta, late.FROM_MANIFEST) for s, delta in submitted.items()})


def test_grades_csv_late_cells_at_the_boundaries():
    rules = _late({"on": timedelta(0), "second": timedelta(seconds=1), "day": timedelta(days=1, seconds=1),
                   "capped": timedelta(days=20)})
    assert rules.cells("on", 10)[1:] == ["0", "0", "10"]
    assert rules.cells("second", 10)[1:] == ["1", "1", "9"]
    assert rules.cells("day", 10)[1:] == ["2", "2", "8"]
    assert rules.cells("capped", 10)[1:] == ["20", "5", "5"]
    assert rules.cells("on", None)[-1] == "not graded"


def test_the_submissions_manifest_is_refused_naming_the_row(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    for name in ("alice", "bob"):
        (folder / f"{name}.ipynb").write_text("{}")
    students = grade.collect([folder])
    good = "student,file,submitted_at\nalice,alice.ipynb,2026-03-01T23:59:00Z\n\n"
    (folder / "submissions.csv").write_text(good)
    times, warnings = late.submission_times(students, [folder])
    assert times["alice"] == late.Submitted(DEADLINE, late.FROM_MANIFEST)
    assert times["bob"].source == late.FROM_MTIME and len(warnings) == 1 and warnings[0].startswith("bob:")
    for text, why in [
        ("student,file,when\n", "row 1: the columns must be exactly"),
        ("student,file,submitted_at,grade\n", "unknown: \\['grade'\\]"),
        (good + "alice,alice.ipynb,2026-03-02T00:00:00Z\n", "row 4: 'alice.ipynb' is listed again \\(first on row 2\\)"),
        ("student,file,submitted_at\ncarol,carol.ipynb,2026-03-01T23:59:00Z\n", "row 2: 'carol.ipynb' is not a submission"),
        ("student,file,submitted_at\nBob,bob.ipynb,2026-03-01T23:59:00Z\n", "row 2: student 'Bob', but the grader names"),
        ("student,file,submitted_at\nbob,bob.ipynb,2026-03-01 23:59\n", "row 2, submitted_at: .* no timezone"),
        ("student,file,submitted_at\nbob,bob.ipynb\n", "row 2: 2 cells"),
    ]:
        (folder / "submissions.csv").write_text(text)
        with pytest.raises(late.LateError, match=why):
            late.submission_times(students, [folder])


def test_grade_refuses_bad_late_flags_before_grading(tmp_path, capsys):
    folder = tmp_path / "subs"
    folder.mkdir()
    for args, why in [(["--deadline", "2026-03-01T23:59"], "no timezone"),
                      (["--deadline", "2026-03-01T23:59Z", "--late-policy", "10%"], "late-policy must be"),
                      (["--late-policy", "zero"], "needs --deadline")]:
        assert cli.main(["grade", "hw1_alexnet", str(folder), "--out", str(tmp_path / "out"), *args]) == 2
        assert why in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "nothing was graded or written"


def test_grade_help_shows_the_late_policy_forms(capsys):
    """argparse %-formats help text: the policy's '%/day' must reach the reader, not crash --help."""
    with pytest.raises(SystemExit) as done:
        cli.main(["grade", "--help"])
    assert done.value.code == 0 and "10%/day,max=50%" in capsys.readouterr().out


# --------------------------------------------------------------------------- hand-grading sheets, pure

def test_points_are_plain_numbers_within_the_maximum():
    assert manual.parse_points(" 2.5 ", 3) == 2.5 and manual.parse_points("0", 3) == 0 and manual.parse_points("3", 3) == 3
    for bad, why in [("4", "above"), ("-1", "not a number"), ("2,5", "use a dot"), ("nan", "not a number"),
                     ("inf", "not a number"), ("1e1", "not a number"), ("two", "not a number")]:
        with pytest.raises(ValueError, match=why):
            manual.parse_points(bad, 3)


def _sheet(path: Path, rows, header=manual.SHEET_COLUMNS) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_a_bad_sheet_is_refused_naming_file_row_and_fix(tmp_path):
    students = {"alice", "bob"}
    path = tmp_path / "q2.csv"
    _sheet(path, [["alice", "written/alice.md", "2", "Good."], ["bob", "written/bob.md", "", ""]])
    marks, problems = manual.read_sheet(path, 3, students)
    assert marks == {"alice": manual.Mark(2.0, "Good.")}
    assert problems == [f"{path}, row 3: no points for bob; write a number from 0 to 3 "
                        "(or run finalize --allow-blank to count blank points as 0)"]
    marks, problems = manual.read_sheet(path, 3, students, allow_blank=True)
    assert not problems and marks["bob"] == manual.Mark(None, "")
    for rows, why in [
        ([["alice", "", "4", ""], ["bob", "", "1", ""]], f"{path}, row 2: points 4 are above this question's 3; write a number from 0 to 3"),
        ([["alice", "", "1", ""], ["bob", "", "1", ""], ["mallory", "", "3", ""]], f"{path}, row 4: no student 'mallory' was graded in this folder; correct the name or delete the row"),
        ([["alice", "", "1", ""], ["bob", "", "1", ""], ["alice", "", "3", ""]], f"{path}, row 4: alice again (first on row 2); keep one row"),
        ([["alice", "", "1", ""]], f"{path}: no row for bob; run python -m autograder manual OUT to add one"),
    ]:
        _sheet(path, rows)
        assert manual.read_sheet(path, 3, students)[1] == [why]
    _sheet(path, [["alice", "", "1", "", "x"]], header=(*manual.SHEET_COLUMNS, "grader"))
    assert "row 1: the columns must be exactly" in manual.read_sheet(path, 3, students)[1][0]


# --------------------------------------------------------------------------- stored exports, pure

def test_kept_exports_are_content_addressed_and_a_changed_one_is_refused(tmp_path):
    captured = {"q1.a": {".json": b'{"y": 6}', ".safetensors": None}, "q1.b": {".json": "x.json is not a plain file",
                                                                            ".safetensors": None}}
    records = stored.keep(captured, tmp_path / "alice")
    assert records["q1.a"][".json"].startswith("sha256:") and records["q1.a"][".safetensors"] == "absent"
    assert records["q1.b"][".json"] == "refused: x.json is not a plain file"
    assert stored.load(records, tmp_path / "alice") == captured
    [kept] = (tmp_path / "alice").iterdir()
    kept.write_bytes(b'{"y": 7}')
    with pytest.raises(stored.Tampered, match="q1.a.json .* was changed after grading"):
        stored.load(records, tmp_path / "alice")
    kept.unlink()
    with pytest.raises(stored.Tampered, match="missing"):
        stored.load(records, tmp_path / "alice")
    assert stored.changed({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == ["b", "c"]


# --------------------------------------------------------------------------- a real graded folder

def _code(source: str, **meta):
    return nbformat.v4.new_code_cell(source, metadata={"grader": meta} if meta else {})


JUDGE = "def inputs(rng):\n    return {'x': rng.randint(1, 9)}\ndef judge(inputs, out):\n    assert out.int('y') == 2 * inputs['x']"
PROBE = 'export("q1.small", y=double(inputs("q1.small")["x"]))'
MODEL = "Model answer: doubling is linear."


def _source(judge: str = JUDGE, probe: str = PROBE) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        _code("def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION", id="q1", kind="answer"),
        _code("from autograder.probe import inputs, export", id="q1", kind="setup", **{"for": "probes"}),
        _code(probe, id="q1", kind="probe", test="small"),
        _code(judge, id="q1", kind="judge", test="small", points=2),
        nbformat.v4.new_markdown_cell(MODEL, metadata={"grader": {"id": "q2", "kind": "written", "points": 3}}),
    ]
    return notebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One real grading run (with the self-check) of three tiny submissions, one of them a day and a second
    late: alice right and on time, bob blank, carol wrong (triple) and late."""
    root = tmp_path_factory.mktemp("graded")
    source = root / "source"
    source.mkdir()
    nbformat.write(_source(), source / "hw9_tiny.ipynb")
    subs = root / "subs"
    subs.mkdir()
    answered = release.student_version(_source(), keep_solutions=True)
    nbformat.write(answered, subs / "alice.ipynb")
    nbformat.write(release.student_version(_source()), subs / "bob.ipynb")
    wrong = release.student_version(_source(), keep_solutions=True)
    wrong.cells[0].source = "def double(x):\n    return 3 * x"
    wrong.cells[-1].source = "Doubling adds the number to itself."
    nbformat.write(wrong, subs / "carol.ipynb")
    (subs / "submissions.csv").write_text("student,file,submitted_at\nalice,alice.ipynb,2026-03-01T23:59:00Z\n"
                                          "carol,carol.ipynb,2026-03-03T00:59:01+01:00\n")
    out = root / "out"
    assert cli.main(["grade", "hw9_tiny", str(subs), "--out", str(out), "--source", str(source), "--workers", "2",
                     "--timeout", "20", "--deadline", "2026-03-01T23:59:00Z", "--late-policy", "10%/day,max=50%"]) == 0
    return root


def _copy(graded: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(graded / "out", tmp_path / "out")
    shutil.copytree(graded / "source", tmp_path / "source")
    return tmp_path / "out", tmp_path / "source"


def _rows(path: Path) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader(open(path, newline=""))}


@needs_bwrap
def test_grade_writes_late_columns_and_keeps_signed_exports(graded):
    out = graded / "out"
    rows = _rows(out / "grades.csv")
    assert list(rows["alice"])[-5:] == ["submitted_at", "late_days", "penalty", "final", "status"]
    assert [rows["alice"][c] for c in ("total", "late_days", "penalty", "final")] == ["2", "0", "0", "2"]
    assert rows["carol"]["total"] == "0" and rows["carol"]["late_days"] == "2", "1 day and 1 s late is 2 days"
    assert int(rows["bob"]["late_days"]) > 0, "no row in submissions.csv: his file's modification time (now)"
    alice = json.loads((out / "results" / "alice.json").read_text())
    assert set(alice["exports"]) == {"q1.small"} and "probe q1.small" in alice["fingerprint"]
    assert (out / "exports" / "alice" / alice["exports"]["q1.small"][".json"][len("sha256:"):]).is_file()
    assert json.loads((out / ".grader" / "self-check.json").read_text())["exports"]


@needs_bwrap
def test_manual_then_finalize_round_trip_with_a_correction(graded, tmp_path, capsys):
    out, source = _copy(graded, tmp_path)
    assert cli.main(["manual", str(out), "--source", str(source)]) == 0
    sheet, page = out / "manual" / "q2.csv", (out / "manual" / "q2.md").read_text()
    assert list(_rows(sheet)) == ["alice", "bob", "carol"]
    assert all(r["points"] == r["comment"] == "" for r in _rows(sheet).values())
    assert MODEL in page and page.index(MODEL) < page.index("## alice") and "Doubling adds" in page
    assert cli.main(["finalize", str(out), "--source", str(source)]) == 2
    assert "row 2: no points for alice" in capsys.readouterr().err and not (out / manual.AUTOMATIC_CSV).exists()

    _sheet(sheet, [["alice", "", "3", "Exactly."], ["carol", "", "1", "Partly, see §2."]])
    assert cli.main(["manual", str(out), "--source", str(source)]) == 0    # adds bob, keeps what was typed
    rows = _rows(sheet)
    assert [rows[s]["points"] for s in ("alice", "carol", "bob")] == ["3", "1", ""]
    assert cli.main(["finalize", str(out), "--source", str(source)]) == 2
    assert cli.main(["finalize", str(out), "--source", str(source), "--allow-blank"]) == 0
    final = _rows(out / "grades.csv")
    assert [final["alice"][c] for c in ("q1", "q2", "automatic", "manual", "total", "max", "final")] == \
        ["2", "3", "2", "3", "5", "5", "5"]
    assert final["carol"]["total"] == "1" and final["carol"]["penalty"] == "0.2" and final["carol"]["final"] == "0.8", \
        "the late penalty is taken from the total after hand grading"
    assert "q2 not graded by hand (counted as 0)" in final["bob"]["status"]
    assert _rows(out / manual.AUTOMATIC_CSV)["alice"]["total"] == "2"

    _sheet(sheet, [["alice", "", "2.5", "On reflection, nearly."], ["bob", "", "0", ""], ["carol", "", "1", "Partly."]])
    assert cli.main(["finalize", str(out), "--source", str(source)]) == 0
    assert cli.main(["finalize", str(out), "--source", str(source)]) == 0     # twice: the same files
    final = _rows(out / "grades.csv")
    assert final["alice"]["total"] == "4.5" and final["bob"]["status"] == "ok"
    feedback = (out / "feedback" / "alice.md").read_text()
    assert "On reflection, nearly." in feedback and "Exactly." not in feedback
    assert feedback.count("## Graded by hand") == 1 and "**Total: 4.5 / 5**" in feedback
    assert "Late by 2 days" in (out / "feedback" / "carol.md").read_text()
    assert _rows(out / manual.AUTOMATIC_CSV)["alice"]["total"] == "2", "the automatic grades are kept"

    lenient = JUDGE.replace("assert out.int('y') == 2 * inputs['x']", "assert out.int('y') % inputs['x'] == 0")
    nbformat.write(_source(judge=lenient), source / "hw9_tiny.ipynb")
    assert cli.main(["rejudge", str(out), "--source", str(source)]) == 0
    final = _rows(out / "grades.csv")
    assert [final["carol"][c] for c in ("automatic", "manual", "total", "penalty", "final")] == ["2", "1", "3", "0.6", "2.4"], \
        "rejudge finalizes again: the hand points and comments survive it"
    assert (out / "feedback" / "carol.md").read_text().count("> Partly.") == 1


@needs_bwrap
def test_rejudge_applies_a_changed_judge_with_its_diff(graded, tmp_path, capsys):
    out, source = _copy(graded, tmp_path)
    lenient = JUDGE.replace("assert out.int('y') == 2 * inputs['x']", "assert out.int('y') % inputs['x'] == 0")
    nbformat.write(_source(judge=lenient), source / "hw9_tiny.ipynb")
    assert cli.main(["rejudge", str(out), "--source", str(source)]) == 0
    printed = capsys.readouterr().out
    assert "carol q1: 0 → 2" in printed and "carol total: 0 → 2" in printed
    assert "alice" not in printed and "bob q1" not in printed, "only what changed is listed"
    key = bytes.fromhex((out / ".grader" / "key").read_text())
    assert read(out / "results" / "carol.json", key).total == 2, "the new result is signed"
    rows = _rows(out / "grades.csv")
    assert rows["carol"]["total"] == "2" and rows["carol"]["final"] == "1.6", "late columns stay"


@needs_bwrap
def test_rejudge_refuses_a_changed_probe_and_a_tampered_export(graded, tmp_path, capsys):
    out, source = _copy(graded, tmp_path)
    before = (out / "grades.csv").read_bytes()
    nbformat.write(_source(probe=PROBE + "  # reworded"), source / "hw9_tiny.ipynb")
    assert cli.main(["rejudge", str(out), "--source", str(source)]) == 2
    error = capsys.readouterr().err
    assert "probe q1.small" in error and "full grade" in error
    assert (out / "grades.csv").read_bytes() == before, "nothing written"

    nbformat.write(_source(judge=JUDGE.replace("def inputs", "def unused")), source / "hw9_tiny.ipynb")
    assert cli.main(["rejudge", str(out), "--source", str(source)]) == 2
    assert "changed since grading: probe q1.small" in capsys.readouterr().err, "new inputs: the probe computed others"

    broken = JUDGE.replace("assert out.int('y') == 2 * inputs['x']", "assert out.int('y') == 0")
    nbformat.write(_source(judge=broken), source / "hw9_tiny.ipynb")
    assert cli.main(["rejudge", str(out), "--source", str(source)]) == 2
    assert "fail your own solution" in capsys.readouterr().err, "a judge that zeroes the reference is refused"
    assert (out / "grades.csv").read_bytes() == before, "nothing written"

    nbformat.write(_source(), source / "hw9_tiny.ipynb")
    [kept] = (out / "exports" / "alice").iterdir()
    kept.write_text('{"y": 1000}')
    assert cli.main(["rejudge", str(out), "--source", str(source)]) == 1
    assert "refused alice: export q1.small.json" in capsys.readouterr().err
    assert _rows(out / "grades.csv")["alice"]["total"] == "2", "alice keeps the grade she had"


@needs_bwrap
def test_merge_keeps_the_exports_and_the_deadline_so_a_merged_folder_can_be_rejudged(graded, tmp_path, capsys):
    _, source = _copy(graded, tmp_path)
    key = tmp_path / "grader.key"
    assert cli.main(["key", str(key)]) == 0
    for index in (0, 1):
        assert cli.main(["grade", "hw9_tiny", str(graded / "subs"), "--out", str(tmp_path / f"shard{index}"),
                         "--source", str(source), "--timeout", "20", "--shard", f"{index}/2", "--key", str(key),
                         "--deadline", "2026-03-01T23:59:00Z", "--late-policy", "zero"]) == 0
    assert cli.main(["merge", str(tmp_path / "shard0"), str(tmp_path / "shard1"), "--out", str(tmp_path / "merged")]) == 0
    rows = _rows(tmp_path / "merged" / "grades.csv")
    assert rows["carol"]["late_days"] == "2" and rows["alice"]["final"] == "2"
    lenient = JUDGE.replace("assert out.int('y') == 2 * inputs['x']", "assert out.int('y') % inputs['x'] == 0")
    nbformat.write(_source(judge=lenient), source / "hw9_tiny.ipynb")
    capsys.readouterr()
    assert cli.main(["rejudge", str(tmp_path / "merged"), "--source", str(source)]) == 0
    assert "carol q1: 0 → 2" in capsys.readouterr().out
    assert _rows(tmp_path / "merged" / "grades.csv")["carol"]["final"] == "0", "zero: late work gets 0"
