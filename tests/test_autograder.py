"""autograder: release, grading with a real kernel under nbval, and robustness (issue 5)."""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder import cells, checks, grade, inject, release
from conftest import REPO

HOMEWORK = sorted(p.stem for p in release.SOURCE_DIR.glob("*.ipynb"))


def solution(hw: str) -> nbformat.NotebookNode:
    return release.student_version(nbformat.read(release.SOURCE_DIR / f"{hw}.ipynb", 4), keep_solutions=True)


def write(notebook, path: Path) -> Path:
    nbformat.write(notebook, path)
    return path


def answer_cell(notebook, qid):
    return next(c for c in notebook.cells if cells.info(c) == {"id": qid, "kind": "answer"})


# --------------------------------------------------------------------------- release

def test_four_homework_sets_exist():
    assert HOMEWORK == ["hw1_alexnet", "hw2_vgg", "hw3_nin", "hw4_googlenet"]
    for hw in HOMEWORK:
        questions = cells.questions(nbformat.read(release.SOURCE_DIR / f"{hw}.ipynb", 4))
        assert 3 <= len(questions) <= 5


def test_homework_folder_is_what_release_writes():
    assert release.stale() == [], "run: python -m autograder release"


def test_release_is_deterministic(tmp_path):
    first = [p.read_bytes() for p in release.release(out_dir=tmp_path / "a")]
    second = [p.read_bytes() for p in release.release(out_dir=tmp_path / "b")]
    assert first == second


def test_release_strips_solutions_hidden_tests_and_outputs():
    for hw in HOMEWORK:
        student = nbformat.read(REPO / "homework" / f"{hw}.ipynb", 4)
        text = nbformat.writes(student)
        assert cells.BEGIN not in text and "assert_own_model" not in text and "assert_formula" not in text
        assert all(cells.info(c).get("kind") != "hidden" for c in student.cells)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in student.cells if c.cell_type == "code")
        assert text.count("raise NotImplementedError()") >= 3


def test_strip_solutions_keeps_indentation():
    source = "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n"
    assert release.strip_solutions(source) == "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    with pytest.raises(ValueError, match="END SOLUTION"):
        release.strip_solutions("# BEGIN SOLUTION\nx = 1\n")


def test_release_check_command_fails_when_out_of_date(tmp_path):
    out = tmp_path / "homework"
    release.release(out_dir=out)
    (out / "hw2_vgg.ipynb").write_text((out / "hw2_vgg.ipynb").read_text().replace("Homework 2", "Homework II"))
    result = subprocess.run([sys.executable, "-m", "autograder", "release", "--check", "--out", str(out)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1 and "hw2_vgg" in result.stderr


# --------------------------------------------------------------------------- injection (no kernel)

def test_hidden_tests_follow_their_question_even_when_cells_move():
    source = nbformat.read(release.SOURCE_DIR / "hw1_alexnet.ipynb", 4)
    submission = solution("hw1_alexnet")
    submission.cells.reverse()  # a student who reordered everything
    injected = inject.inject(source, submission)
    code = [c for c in injected.notebook.cells if c.cell_type == "code"]
    for index, test in injected.hidden_at.items():
        assert code[index].source == test.source
        before = [cells.info(c).get("id") for c in code[:index] if cells.info(c).get("kind") != "hidden"]
        assert test.question in before  # placed after a cell of its own question


def test_uses_detects_the_reference_through_any_import():
    from torch import nn

    from book import models
    import book

    def honest():
        return nn.Sequential(nn.Linear(2, 2))

    def through_module():
        return models.build_small("alexnet")

    def through_package():
        return book.models.build_small("alexnet")

    assert not checks.uses(honest, ("book.models",))
    assert checks.uses(through_module, ("book.models",))
    assert checks.uses(through_package, ("book.models",))
    assert checks.uses(models.build_small("nin"), ("book.models",))


# --------------------------------------------------------------------------- grading with real kernels

def grade_folder(tmp_path, hw, submissions: dict, workers=2, timeout=20):
    folder = tmp_path / "submissions"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in submissions.items():
        path = folder / f"{name}.ipynb"
        if isinstance(content, str):
            path.write_text(content)
        else:
            write(content, path)
    out = tmp_path / "out"
    results = grade.grade(hw, [folder], out, workers=workers, cell_timeout=timeout, progress=False)
    return {r["student"]: r for r in results}, out


@pytest.mark.parametrize("hw", HOMEWORK)
def test_solution_scores_full_marks_and_blank_scores_zero(tmp_path, hw):
    blank = nbformat.read(REPO / "homework" / f"{hw}.ipynb", 4)
    results, out = grade_folder(tmp_path, hw, {"reference": solution(hw), "untouched": blank})
    assert results["reference"]["total"] == results["reference"]["max_points"] > 0, results["reference"]
    assert results["reference"]["status"] == "ok"
    assert results["untouched"]["total"] == 0 and results["untouched"]["status"] == "ok"
    rows = list(csv.DictReader(open(out / "grades.csv")))
    assert [r["student"] for r in rows] == ["reference", "untouched"]
    assert (out / "histogram.png").stat().st_size > 1000
    feedback = (out / "feedback" / "untouched.md").read_text()
    assert "failed" in feedback and "assert" not in feedback  # the instructor's words, not the test code


def test_bad_submissions_get_a_status_and_change_no_other_grade(tmp_path):
    hw = "hw3_nin"
    good = solution(hw)

    deleted = solution(hw)
    deleted.cells.remove(answer_cell(deleted, "q2"))

    exception = solution(hw)
    answer_cell(exception, "q1").source = "raise RuntimeError('my bug')"

    loop = solution(hw)
    answer_cell(loop, "q2").source = "while True:\n    pass"

    dies = solution(hw)
    answer_cell(dies, "q3").source = "import os\nos._exit(1)"

    flood = solution(hw)
    answer_cell(flood, "q2").source += "\nfor _ in range(100):\n    print('x' * 1_000_000)"

    results, out = grade_folder(tmp_path, hw, {
        "a_good": good, "b_invalid_json": '{"cells": [ this is not json', "c_deleted_cell": deleted,
        "d_exception": exception, "e_infinite_loop": loop, "f_kernel_dies": dies, "g_flood": flood,
    }, workers=2, timeout=8)
    full = results["a_good"]["max_points"]
    assert results["a_good"]["total"] == full and results["a_good"]["status"] == "ok"

    assert results["b_invalid_json"]["status"].startswith("invalid notebook") and results["b_invalid_json"]["total"] == 0

    assert "answer cell missing: q2" in results["c_deleted_cell"]["status"]
    assert results["c_deleted_cell"]["questions"]["q2"]["points"] == 0
    assert results["c_deleted_cell"]["questions"]["q1"]["points"] == 6

    q = results["d_exception"]["questions"]
    assert q["q1"]["points"] == 0 and "my bug" in q["q1"]["answer_error"]
    assert q["q2"]["points"] == 3 and q["q3"]["points"] == 3  # the other answers are still graded

    assert "timeout" in results["e_infinite_loop"]["status"]
    assert results["e_infinite_loop"]["questions"]["q1"]["points"] == 6

    assert "kernel died" in results["f_kernel_dies"]["status"]
    assert results["f_kernel_dies"]["questions"]["q3"]["points"] == 0
    assert results["f_kernel_dies"]["questions"]["q1"]["points"] == 6

    assert results["g_flood"]["total"] == full  # printing 100 MB costs nothing but time

    # Grading the good submission alone gives the same grade: the batch changed nothing.
    alone, _ = grade_folder(tmp_path / "alone", hw, {"a_good": good})
    assert alone["a_good"]["questions"] == results["a_good"]["questions"]


def test_an_answer_that_imports_the_reference_scores_nothing_for_it(tmp_path):
    hw = "hw1_alexnet"
    cheat = solution(hw)
    answer_cell(cheat, "q1").source = (
        "from book import models\n\ndef alexnet_28(num_classes=10):\n"
        "    return models.AlexNet(num_classes, 1, width=0.25, towers=1, lrn=False, stem='small', pool_size=2)")
    results, _ = grade_folder(tmp_path, hw, {"cheat": cheat})
    assert results["cheat"]["questions"]["q1"]["points"] == 0
    assert results["cheat"]["questions"]["q2"]["points"] == 2


def test_grading_twice_gives_identical_grades(tmp_path):
    hw = "hw2_vgg"
    partial = solution(hw)
    answer_cell(partial, "q3").source = "def stacked_vs_single(channels, layers):\n    return (1, 2)"
    subs = {"partial": partial, "full": solution(hw)}
    _, first = grade_folder(tmp_path / "one", hw, subs)
    _, second = grade_folder(tmp_path / "two", hw, subs)
    assert (first / "grades.csv").read_text() == (second / "grades.csv").read_text()
    assert "partial,6,3,0,9" in (first / "grades.csv").read_text()


def test_interrupted_run_resumes_without_regrading(tmp_path):
    hw = "hw2_vgg"
    folder = tmp_path / "subs"
    folder.mkdir()
    for i in range(4):
        write(solution(hw), folder / f"student{i}.ipynb")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "autograder", "grade", hw, str(folder), "--out", str(out), "--workers", "1"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    first = out / "results" / "student0.json"
    deadline = time.time() + 120
    while not first.exists() and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, 9)  # the instructor's laptop went to sleep
    process.wait()
    assert first.exists()
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    assert len(finished) < 4
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=300)
    for name, mtime in finished.items():
        assert (out / "results" / name).stat().st_mtime_ns == mtime, f"{name} was graded again"
    rows = list(csv.DictReader(open(out / "grades.csv")))
    assert len(rows) == 4 and all(r["total"] == "12" for r in rows)
    assert json.loads((out / "summary.json").read_text())["students"] == 4


def test_missing_homework_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", "hw9_nothing", str(tmp_path), "--out",
                             str(tmp_path / "o")], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "hw1_alexnet" in result.stderr
