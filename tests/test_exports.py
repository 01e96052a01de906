"""Gradebook exports (issue 23, point 5): Canvas fills its own export byte for byte, Moodle's import CSV,
nbgrader's columns, and the Gradescope zip run locally in a folder laid out like Gradescope's, its
results.json validated against a schema written from Gradescope's specification."""

import csv
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import jsonschema
import nbformat
import pytest

from autograder import keys, late, manual, release
from autograder.exports import canvas, gradescope_run
from conftest import REPO
from test_items import graded_folder, make_result

POINTS = {"q1.a": 4.0, "q1.b": 4.0, "q2.c": 6.0}   # 14 automatic points


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env)


def a_class():
    return [make_result("jdoe", {"q1.a", "q1.b"}, points=POINTS),                     # 8
            make_result("sobrien", {"q1.a", "q2.c"}, points=POINTS),                  # 10, overwrites 5.00
            make_result("eve", {"q1.a", "q1.b", "q2.c"}, points=POINTS),              # 14 > 12 possible
            make_result("zoe", {"q1.b"}, points=POINTS),                              # 4, by --map
            make_result("ghost", {"q1.a"}, points=POINTS),                            # no Canvas row
            make_result("late_one", set(), graded=False, points=POINTS)]              # grader failure


# Canvas's export, written by hand in its format: UTF-8 with a BOM, CRLF, a Manual Posting row, the
# "    Points Possible" row, names with a comma, doubled quotes, accents and a leading "=", a test student.
HEADER = ("Student,ID,SIS User ID,SIS Login ID,Section,HW1 AlexNet (12345),HW2 VGG (12346),Current Points,"
          "Final Points,Current Score,Unposted Current Score,Final Score,Unposted Final Score")
MANUAL = ",,,,,Manual Posting,,,,,,,"
POSSIBLE = "    Points Possible,,,,,12.00,10.00,(read only),(read only),(read only),(read only),(read only),(read only)"
ROWS = [  # (identity columns as Canvas quoted them, HW1 cell, the rest)
    ('"Doe, Jane",1001,S1001,jdoe,Section 01', "", "8.00,8.00,8.00,80.00,80.00,36.36,36.36"),
    ('"O\'Brien ""Sam"", Seán",1002,S1002,SOBrien,"Section 01, Lab"', "5.00", "9.00,14.00,14.00,63.64,63.64,63.64,63.64"),
    ('"=cmd|\' /C calc\'!A0",1003,S1003,eve,Section 02', "", ",,,,,,"),
    ('"Müller, Zoë",1004,S1004,zmuller@uni.example,Section 02', "", "10.00,10.00,10.00,100.00,100.00,45.45,45.45"),
    ('"Student, Test",1005,,,Section 01', "", ",,,,,,"),
]


def canvas_export() -> bytes:
    lines = [HEADER, MANUAL, POSSIBLE] + [f"{who},{hw1},{rest}" for who, hw1, rest in ROWS]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def test_canvas_fill_changes_only_the_assignment_cells_of_matched_students(tmp_path):
    out = graded_folder(tmp_path, a_class())
    export = tmp_path / "canvas_export.csv"
    export.write_bytes(canvas_export())
    mapping = tmp_path / "map.csv"
    mapping.write_text("student,sis_login_id\nzoe,zmuller@uni.example\n")
    args = ["export", "canvas", out, "--gradebook", export, "--assignment", "HW1 AlexNet (12345)", "--map", mapping]

    dry = cli(*args)
    assert dry.returncode == 0, dry.stderr
    assert not (out / "canvas_import.csv").exists(), "a dry run writes nothing"
    report = dry.stdout
    assert "DRY RUN" in report and "matched: 4" in report
    assert "unmatched students (graded, no row in the LMS file; add them to --map): 1\n    ghost" in report
    assert "not graded (grader failure; left as they are, never a zero): 1\n    late_one" in report
    assert "out of range: 1\n    eve: 14 not in 0..12" in report
    assert "would overwrite a different existing grade: 1\n    sobrien (SOBrien): 5.00 -> 10" in report
    assert "Student, Test" in report, "a Canvas row without a result is listed"
    assert "Canvas gives 12 points possible, the grader 14" in report

    done = cli(*args, "--write")
    assert done.returncode == 0, done.stderr
    written = (out / "canvas_import.csv").read_bytes()
    original = canvas_export()
    assert written.startswith(b"\xef\xbb\xbf") and written.count(b"\r\n") == original.count(b"\r\n")
    new_lines, old_lines = written.decode()[1:].split("\r\n"), original.decode()[1:].split("\r\n")
    assert new_lines[:3] == old_lines[:3] == [HEADER, MANUAL, POSSIBLE], "header, muted and Points Possible rows"
    expected = {"jdoe": "8", "SOBrien": "10", "eve": "14", "zmuller@uni.example": "4"}
    for (who, hw1, rest), line in zip(ROWS, new_lines[3:]):
        assert line.startswith(who + ","), f"identity columns byte for byte: {line!r}"
        assert line.endswith("," + rest), "the other assignments and totals stay"
        login = next(csv.reader(io.StringIO(who)))[3]
        assert line == f"{who},{expected.get(login, hw1)},{rest}"
    assert new_lines[-1] == "" and len(new_lines) == len(old_lines)
    rows = list(csv.reader(io.StringIO(written.decode("utf-8-sig"))))
    assert rows[5][0] == "=cmd|' /C calc'!A0" and rows[4][0] == 'O\'Brien "Sam", Seán'


def test_canvas_refuses_an_unknown_assignment_and_a_file_that_is_not_its_csv(tmp_path):
    text = canvas_export().decode()
    with pytest.raises(canvas.CanvasFormatError, match="no column 'HW9'.*HW1 AlexNet \\(12345\\)"):
        canvas.fill(text, {}, "HW9", {}, results=[])
    filled, _ = canvas.fill(text, {"jdoe": 3.0}, "12345", {}, results=[make_result("jdoe", {"q1.a"}, points=POINTS)])
    assert "Section 01,3,8.00" in filled, "the assignment may be named by its Canvas id"
    with pytest.raises(canvas.CanvasFormatError, match="SIS Login ID"):
        canvas.fill("Student,ID,Section\n", {}, "x", {}, results=[])
    with pytest.raises(canvas.CanvasFormatError, match="unclosed quote"):
        canvas.fill(HEADER + '\n"Doe, Jane,1001\n', {}, "HW1 AlexNet (12345)", {}, results=[])


MOODLE = ("First name,Last name,ID number,Institution,Department,Email address,Assignment: hw9_synthetic (Real),"
          "Last downloaded from this course\r\n"
          "Jane,Doe,,,,jdoe@uni.example,-,1765000000\r\n"
          "Sam,O'Brien,,,,sobrien@uni.example,5.00,1765000000\r\n"
          "Eve,\"=Evil\",,,,eve@uni.example,-,1765000000\r\n"
          "Zoë,Müller,,,,zmuller@uni.example,-,1765000000\r\n")


def test_moodle_import_csv_has_identity_grade_and_feedback(tmp_path):
    out = graded_folder(tmp_path, a_class())
    (tmp_path / "moodle.csv").write_text(MOODLE, encoding="utf-8")
    (tmp_path / "map.csv").write_text("zoe,zmuller@uni.example\n")
    args = ["export", "moodle", out, "--roster", tmp_path / "moodle.csv", "--map", tmp_path / "map.csv"]
    dry = cli(*args)
    assert dry.returncode == 0 and not (out / "moodle_import.csv").exists(), dry.stderr
    assert "matched: 4" in dry.stdout and "ghost" in dry.stdout and "eve: 14" not in dry.stdout
    assert "would overwrite a different existing grade: 1\n    sobrien (sobrien@uni.example): 5.00 -> 10" in dry.stdout
    assert cli(*args, "--write").returncode == 0
    rows = list(csv.reader(open(out / "moodle_import.csv", encoding="utf-8")))
    assert rows[0] == ["Email address", "hw9_synthetic", "Feedback"]
    got = {r[0]: r[1:] for r in rows[1:]}
    assert set(got) == {"jdoe@uni.example", "sobrien@uni.example", "eve@uni.example", "zmuller@uni.example"}
    assert got["jdoe@uni.example"] == ["8", "Automatic score 8 / 14 (q1 8/8, q2 0/6)"]
    assert got["zmuller@uni.example"][0] == "4"


def test_nbgrader_csv_has_nbgraders_export_columns(tmp_path):
    out = graded_folder(tmp_path, a_class())
    (tmp_path / "roster.csv").write_text("id,last_name,first_name,email\njdoe,Doe,Jane,jdoe@uni.example\n")
    args = ["export", "nbgrader", out, "--roster", tmp_path / "roster.csv", "--duedate", "2026-10-01 23:59:00"]
    assert "DRY RUN" in cli(*args).stdout and not (out / "nbgrader_grades.csv").exists()
    assert cli(*args, "--write").returncode == 0
    rows = list(csv.DictReader(open(out / "nbgrader_grades.csv", encoding="utf-8")))
    assert list(rows[0]) == ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                             "raw_score", "late_submission_penalty", "score", "max_score"]
    by = {r["student_id"]: r for r in rows}
    assert sorted(by) == ["eve", "ghost", "jdoe", "sobrien", "zoe"], "a grader failure is no row (not a zero)"
    assert by["jdoe"] == {"assignment": "hw9_synthetic", "duedate": "2026-10-01 23:59:00", "timestamp": "",
                          "student_id": "jdoe", "last_name": "Doe", "first_name": "Jane", "email": "jdoe@uni.example",
                          "raw_score": "8", "late_submission_penalty": "0", "score": "8", "max_score": "14"}


# --------------------------------------------------------------------------- hand grading and late work

DEADLINE = datetime(2026, 10, 1, 23, 59, tzinfo=timezone.utc)


def written_class():
    """jdoe 8 and sobrien 10 automatic points, a written question q3 (3 points), late_one not graded."""
    return [replace(r, manual_max=3.0) for r in a_class() if r.student in ("jdoe", "sobrien", "late_one")]


def finalized_folder(tmp_path):
    """A folder as finalize leaves it: q3 graded by hand (jdoe 3, sobrien 2), jdoe one day late at 10%/day."""
    results = written_class()
    out = graded_folder(tmp_path, results)
    rules = late.Late(DEADLINE, late.parse_policy("10%/day"), {
        "jdoe": late.Submitted(DEADLINE + timedelta(hours=5), late.FROM_MANIFEST),
        "sobrien": late.Submitted(DEADLINE, late.FROM_MANIFEST),
        "late_one": late.Submitted(DEADLINE, late.FROM_MANIFEST)})
    late.save(rules, out, keys.grader_key(out))
    q1, q2 = (SimpleNamespace(id=q, manual=False, points=p) for q, p in (("q1", 8.0), ("q2", 6.0)))
    q3 = SimpleNamespace(id="q3", manual=True, points=3.0)
    assignment = SimpleNamespace(columns=[q1, q2, q3], questions=[q1, q2], written=[q3])
    marks = {"q3": {"jdoe": manual.Mark(3.0, ""), "sobrien": manual.Mark(2.0, "Good."), "late_one": manual.Mark(0.0, "")}}
    (out / "grades.csv").write_text(manual.final_csv(results, assignment, marks, rules), newline="")
    (out / manual.FINALIZED).parent.mkdir(parents=True, exist_ok=True)
    (out / manual.FINALIZED).write_text(json.dumps({"allow_blank": False}))
    return out


def test_a_finalized_folder_exports_automatic_plus_manual_less_the_late_penalty(tmp_path):
    out = finalized_folder(tmp_path)
    export = tmp_path / "canvas_export.csv"
    export.write_bytes(canvas_export())
    done = cli("export", "canvas", out, "--gradebook", export, "--assignment", "12345", "--write")
    assert done.returncode == 0, done.stderr
    assert "finalized grades" in done.stdout and "WARNING" not in done.stdout
    rows = {r[3]: r[5] for r in csv.reader(io.StringIO((out / "canvas_import.csv").read_text("utf-8-sig")))}
    assert (rows["jdoe"], rows["SOBrien"]) == ("9.9", "12"), "(8 + 3) − 10% for a day late; 10 + 2 on time"

    assert cli("export", "nbgrader", out, "--write").returncode == 0
    by = {r["student_id"]: r for r in csv.DictReader(open(out / "nbgrader_grades.csv", encoding="utf-8"))}
    assert sorted(by) == ["jdoe", "sobrien"]
    assert [by["jdoe"][c] for c in ("raw_score", "late_submission_penalty", "score", "max_score")] == \
        ["11", "1.1", "9.9", "17"]
    assert by["jdoe"]["timestamp"] == "2026-10-02 04:59:00.000000", "the submission time late work was judged by"

    (tmp_path / "moodle.csv").write_text(MOODLE, encoding="utf-8")
    assert cli("export", "moodle", out, "--roster", tmp_path / "moodle.csv", "--write").returncode == 0
    got = {r[0]: r[1:] for r in csv.reader(open(out / "moodle_import.csv", encoding="utf-8"))}
    assert got["jdoe@uni.example"] == ["9.9", "Automatic score 8 / 14 (q1 8/8, q2 0/6) + 3 / 3 for written answers "
                                       "graded by hand − 1.1 late penalty = 9.9 / 17"]

    stale = (out / "grades.csv").read_text().replace("jdoe,8,0,3,8,", "jdoe,8,0,3,7,")   # not from the signed results
    (out / "grades.csv").write_text(stale, newline="")
    assert "jdoe,8,0,3,7," in stale
    refused = cli("export", "nbgrader", out)
    assert refused.returncode == 2 and "run python -m autograder finalize" in refused.stderr


def test_written_answers_not_finalized_refuse_write_without_automatic_only(tmp_path):
    out = graded_folder(tmp_path, written_class())
    for args in (["nbgrader", out], ["moodle", out, "--roster", tmp_path / "moodle.csv"]):
        (tmp_path / "moodle.csv").write_text(MOODLE, encoding="utf-8")
        dry = cli("export", *args)
        assert dry.returncode == 0 and "WARNING: written answers not graded yet: run manual + finalize, or pass " \
            "--automatic-only to export automatic points" in dry.stdout.splitlines()[1]
        refused = cli("export", *args, "--write")
        assert refused.returncode == 2 and "nothing written" in refused.stderr
        assert not list(out.glob("*_grades.csv")) + list(out.glob("*_import.csv"))
    assert cli("export", "nbgrader", out, "--automatic-only", "--write").returncode == 0
    by = {r["student_id"]: r["score"] for r in csv.DictReader(open(out / "nbgrader_grades.csv", encoding="utf-8"))}
    assert by == {"jdoe": "8", "sobrien": "10"}, "the automatic points, as asked"


# --------------------------------------------------------------------------- Gradescope

def _code(source, **meta):
    return nbformat.v4.new_code_cell(source, metadata={"grader": meta})


def tiny_source() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        _code("def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION", id="q1", kind="answer"),
        _code("from autograder.probe import export", id="q1", kind="setup", **{"for": "probes"}),
        _code('export("q1.small", y=double(3))', id="q1", kind="probe", test="small"),
        _code("def judge(inputs, out):\n    assert out.int('y') == 6", id="q1", kind="judge", test="small", points=1,
              message="double(3) should be 6."),
        _code('export("q1.large", y=double(10**6))', id="q1", kind="probe", test="large"),
        _code("def judge(inputs, out):\n    assert out.int('y') == 2 * 10**6", id="q1", kind="judge", test="large",
              points=2, message="double is wrong for large numbers."),
        nbformat.v4.new_markdown_cell("Because.", metadata={"grader": {"id": "q2", "kind": "written", "points": 3}})]
    return notebook


@pytest.fixture(scope="module")
def gradescope_root(tmp_path_factory):
    """The zip built by the command, unpacked as Gradescope does: root/source, root/submission, root/results."""
    base = tmp_path_factory.mktemp("gradescope")
    (base / "src").mkdir()
    nbformat.write(tiny_source(), base / "src" / "hw9_tiny.ipynb")
    done = cli("export", "gradescope", "--homework", "hw9_tiny", "--source", base / "src", "--out", base / "hw9.zip",
               "--timeout", "20")
    assert done.returncode == 0, done.stderr
    root = base / "root"
    with zipfile.ZipFile(base / "hw9.zip") as archive:
        names = archive.namelist()
        assert {"setup.sh", "run_autograder", "grader.key", "gradescope.json", "instructor/hw9_tiny.ipynb",
                "autograder/grade.py", "autograder/exports/gradescope_run.py", "book/models/alexnet.py"} <= set(names)
        assert not any(n.startswith("autograder/source/") for n in names), "the course's examples stay out"
        assert stat.S_IMODE(archive.getinfo("run_autograder").external_attr >> 16) == 0o755
        archive.extractall(root / "source")
    for name in ("run_autograder", "setup.sh"):
        os.chmod(root / "source" / name, 0o755)
    (root / "submission").mkdir()
    student = release.student_version(tiny_source(), keep_solutions=True)
    student.cells[0].source = "def double(x):\n    return 2 * x if x < 100 else 0"   # small passes, large fails
    nbformat.write(student, root / "submission" / "my_work.ipynb")
    return root


def run_autograder(root, path_prefix: str = ""):
    shutil.rmtree(root / "results", ignore_errors=True)
    env = {**os.environ, "GRADESCOPE_ROOT": str(root), "GRADESCOPE_PYTHON": sys.executable,
           "PATH": path_prefix + os.environ["PATH"]}
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], capture_output=True, text=True, env=env,
                          timeout=240)
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, gradescope_run.RESULTS_SCHEMA)
    return done, results


def test_the_schema_refuses_what_gradescope_would_not_read():
    for bad in ({"tests": [{"name": "t", "score": 1, "max_score": 1, "status": "ok", "output": "",
                            "visibility": "visible"}]},
                {"score": 1, "tests": [{"name": "t", "score": 1, "max_score": 1, "status": "passed", "output": "",
                                        "visibility": "secret"}]},
                {"output": "no score, no tests, not marked not graded"}, {"score": "10"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, gradescope_run.RESULTS_SCHEMA)


needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                                 reason="bubblewrap is not installed (apt-get install bubblewrap)")


@needs_bwrap
def test_the_gradescope_zip_grades_one_submission_in_the_sandbox(gradescope_root):
    done, results = run_autograder(gradescope_root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert results["score"] == 1.0 and results["extra_data"]["graded"] is True
    tests = {t["name"]: t for t in results["tests"]}
    assert tests["q1.small (1 point)"] | {"output": ""} == {
        "name": "q1.small (1 point)", "number": "1.1", "score": 1.0, "max_score": 1.0, "status": "passed",
        "output": "", "visibility": "after_published"}
    large = tests["q1.large (2 points)"]
    assert (large["score"], large["max_score"], large["status"], large["output"]) == \
        (0.0, 2.0, "failed", "double is wrong for large numbers.")
    assert "def judge" not in json.dumps(results) and "2 * 10**6" not in json.dumps(results)
    assert "q2: graded by hand" in results["output"], "the written answer is listed, not a test"


@needs_bwrap
def test_a_broken_sandbox_in_the_container_says_not_graded_never_zero(gradescope_root, tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    done, results = run_autograder(gradescope_root, f"{fake}:")
    assert done.returncode == 1
    assert "score" not in results and "tests" not in results, "no zero anywhere"
    assert results["output"].startswith("Not graded: the grading sandbox cannot start")
    assert results["extra_data"]["graded"] is False and "uid map" in results["extra_data"]["reason"]
