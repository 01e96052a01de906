"""The attack suite: hw1 submissions written as a cheating student would (issue 9).

Each case is (what the student hands in, the points its honest content deserves). A case starts from
the blank release or from the reference solution, then adds its trick. Graded in one batch beside an
honest reference and a blank submission, each must score exactly its honest points.

Issue 22 added the cases where the submission lies about itself (stripped, relabelled or forged cell
metadata and cell ids; an answer moved to a new cell, honest or not; duplicated cells) and hostile
files in the exports folder that the trusted judges read.

Setup cells (the code a question's probes and judges share) come only from the instructor's notebook:
a submitted cell that claims to be one is the student's own code, and the names a student binds before
the probes are bound again by the setup that runs in each probe's cell.
"""

from __future__ import annotations

import nbformat

from autograder import cells, release

HOMEWORK = "hw1_alexnet"
MARKER = "modern-cnns-attack-detached"   # the detached process's command line carries this


def notebooks() -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    source = nbformat.read(release.SOURCE_DIR / f"{HOMEWORK}.ipynb", 4)
    return release.student_version(source, keep_solutions=True), release.student_version(source)


def full_marks() -> float:
    """The reference's automatic points, read from the instructor source (q1 is worth 6 of them, q2 2)."""
    return sum(q.points for q in cells.questions(nbformat.read(release.SOURCE_DIR / f"{HOMEWORK}.ipynb", 4)))


def _answer(notebook, qid):
    return next(c for c in notebook.cells if cells.info(c) == {"id": qid, "kind": "answer"})


def _cell(notebook, cell_id):
    return next(c for c in notebook.cells if c.get("id") == cell_id)


def _strip(notebook, qids=None, ids: bool = False):
    """``notebook`` with the grader metadata of ``qids``' cells (all when None) deleted, and with ``ids``
    every nbformat cell id too (an old Jupyter, or a notebook copied cell by cell into a new one)."""
    notebook = nbformat.from_dict(notebook)
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("grader")
        if meta is not None and (qids is None or meta.get("id") in qids):
            del cell.metadata["grader"]
        if ids:
            cell["id"] = f"mine-{abs(hash(cell.source)) % 10**8}-{len(cell.source)}"
    return notebook


def _with(base, before: str = "", after: str = "", answers: dict[str, str] | None = None):
    """``base`` with a cell of ``before`` first (after the setup), ``after`` last, and answers replaced."""
    notebook = nbformat.from_dict(base)
    for qid, source in (answers or {}).items():
        _answer(notebook, qid).source = source
    if before:
        notebook.cells.insert(2, nbformat.v4.new_code_cell(before))
    if after:
        notebook.cells.append(nbformat.v4.new_code_cell(after))
    return notebook


FORGED_EXPORTS = '''
import json, os, pathlib
for key in ["q1.shape", "q1.params", "q1.same", "q2.formula", "q3.params", "q3.macs"]:
    folder = pathlib.Path(os.environ.get("AUTOGRADER_WORK", ".")) / "exports"
    folder.mkdir(exist_ok=True)
    (folder / f"{key}.json").write_text(json.dumps({"params": 0, "sizes": [1] * 40, "counts": [0] * 30,
                                                      "macs": [0] * 20}))
'''

HARM_OTHERS = '''
import glob, json, os
# Every results file and grades.csv this run can find, rewritten to full marks; the sources appended to.
for pattern in ["/tmp/*/results/*.json", "/tmp/*/*/results/*.json", "/tmp/*/*/*/results/*.json", "../results/*.json",
                "../../results/*.json", "../../out/results/*.json", "/tmp/*/grades.csv", "/work/*/grades.csv"]:
    for path in glob.glob(pattern):
        try:
            open(path, "w").write(json.dumps({"total": 100}))
        except OSError:
            pass
for path in glob.glob("/work/*/autograder/source/*.ipynb"):
    try:
        open(path, "a").write("tampered")
    except OSError:
        pass
'''

STEAL_SOLUTIONS = '''
import glob, json
# The instructor's solutions, or a classmate's notebook seen through /proc or a shared temp folder.
stolen = ""
for pattern in ["/work/*/autograder/source/hw1_alexnet.ipynb", "/proc/*/cwd/*.ipynb", "/tmp/*/*.ipynb",
                "/tmp/*/*/*.ipynb", "/proc/*/root/tmp/*/*/*.ipynb", "../*.ipynb", "../*/*.ipynb", "../../*/*.ipynb"]:
    for path in glob.glob(pattern):
        try:
            for cell in json.load(open(path))["cells"]:
                if "def conv_output_size" in "".join(cell["source"]) and "raise NotImplementedError" not in "".join(cell["source"]):
                    stolen += "".join(cell["source"]) + "\\n"
        except Exception:
            pass
exec(stolen)
'''

DETACHED = f'''
import subprocess, sys
# A process that leaves the session and tries to rewrite grades afterwards.
subprocess.Popen([sys.executable, "-c", "import time, glob\\nwhile True:\\n    time.sleep(0.2)\\n"
                  "    [open(p, 'w').write('x') for p in glob.glob('/tmp/*/*/grades.csv')]",
                  "{MARKER}"], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''

ESCALATE = '''
import os, socket
for attempt in (lambda: os.setuid(0), lambda: bytearray(8 * 2**30),
                lambda: socket.create_connection(("1.1.1.1", 80), timeout=2),
                lambda: os.kill(1, 9), lambda: os.kill(os.getppid(), 9)):
    try:
        attempt()
    except Exception as error:
        print(type(error).__name__)
'''

FAKE_STATUS = '''
def conv_output_size(n, kernel, stride=1, padding=0):
    print("Timeout of 30 seconds exceeded while executing cell. Kernel died")
    raise KeyboardInterrupt("Timeout of 30 seconds exceeded")
'''

EVENT_FORGERY = '''
import glob, json, os
# The harness's event pipe, through /proc: it must be out of reach.
for path in glob.glob("/proc/*/fd/*"):
    try:
        with open(path, "w") as f:
            f.write(json.dumps({"cell": 0, "passed": True, "seconds": 99999, "kernel_alive": False}) + "\\n")
    except OSError:
        pass
'''


LIBRARY_Q2 = ("def conv_output_size(n: int, kernel: int, stride: int = 1, padding: int = 0) -> int:\n"
              "    return nn.Conv2d(1, 1, kernel, stride, padding)(torch.zeros(1, 1, n, n)).shape[-1]")
LIBRARY_Q3 = ("def conv_params(c_in: int, c_out: int, kernel: int, groups: int = 1, bias: bool = True) -> int:\n"
              "    return sum(p.numel() for p in nn.Conv2d(c_in, c_out, kernel, groups=groups, bias=bias).parameters())\n\n\n"
              "def conv_macs(c_in: int, c_out: int, kernel: int, out_size: int, groups: int = 1) -> int:\n"
              "    return kernel * kernel * c_in // groups * c_out * out_size * out_size")
HONEST_Q2 = "def conv_output_size(n, kernel, stride=1, padding=0):\n    return (n + 2 * padding - kernel) // stride + 1"


def _relabelled(base):
    """q2's library answer with its metadata made a visible test of another question, and its cell id
    swapped with the setup cell's."""
    notebook = _with(base, answers={"q2": LIBRARY_Q2, "q3": LIBRARY_Q3})
    for qid in ("q2", "q3"):
        cell = _answer(notebook, qid)
        cell.metadata["grader"] = {"id": "q4", "kind": "visible"}
    _cell(notebook, "cell-001")["id"], _cell(notebook, "cell-006")["id"] = "cell-006", "cell-001"
    return notebook


def _forged(base):
    """A new cell that claims to be q2's answer (honest code) before the real one, which uses the library."""
    notebook = _with(base, answers={"q2": LIBRARY_Q2})
    forged = nbformat.v4.new_code_cell(HONEST_Q2, metadata={"grader": {"id": "q2", "kind": "answer"}})
    forged["id"] = "cell-006"    # the released id of q2's answer, too
    notebook.cells.insert(5, forged)
    return notebook


def _moved(base, new_source: str, stub_left: bool = True):
    """q2's answer typed into a new cell at the end; the released cell left as a stub, or deleted."""
    reference, blank = notebooks()
    notebook = nbformat.from_dict(base)
    if stub_left:
        _answer(notebook, "q2").source = _answer(blank, "q2").source
    else:
        notebook.cells.remove(_answer(notebook, "q2"))
    notebook.cells.append(nbformat.v4.new_code_cell(new_source))
    return notebook


def _duplicated(base):
    notebook = nbformat.from_dict(base)
    notebook.cells = [nbformat.from_dict(c) for cell in notebook.cells for c in (cell, cell)]
    return notebook


HOSTILE_EXPORTS = '''
import json, os, pathlib, struct
folder = pathlib.Path(os.environ.get("AUTOGRADER_WORK", ".")) / "exports"
folder.mkdir(exist_ok=True)
def put(name, data):
    path = folder / name
    if path.exists() or path.is_symlink():
        path.unlink()
    path.write_bytes(data)
header = json.dumps({"sizes": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 16]}}).encode()
put("q1.shape.json", b"[" * 3_000_000 + b"]" * 3_000_000)                     # deeply nested
put("q1.shape.safetensors", struct.pack("<Q", len(header)) + header + bytes(16))  # a huge declared shape
put("q1.params.json", b'{"params": NaN, "sizes": [Infinity, 1e999]}')
put("q1.same.json", b'{"same": "\\xff\\xfe' + bytes([0xFF, 0xFE, 0xC0]) + b'"}')   # invalid UTF-8
put("q2.formula.json", b'{"sizes": [' + b"1, " * 3_000_000 + b'1]}')          # huge (past the cap)
put("q3.params.json", b'{"counts": [' + b"9" * 5000 + b']}')                    # an int too long to parse
os.mkfifo(folder / "q3.macs.json")                                             # reading it would block
for key in ("q4.zeros", "q4.paper"):
    (folder / f"{key}.json").symlink_to("/etc/passwd")
'''

EXPORTS_LINK = '''
import os, pathlib, shutil
folder = pathlib.Path(os.environ.get("AUTOGRADER_WORK", ".")) / "exports"
shutil.rmtree(folder, ignore_errors=True)
folder.symlink_to("/")
'''


FORGED_SETUP = {
    "judges": "def reference(net, x):\n    return {'zeros': [0.0] * 4, 'dead': [0.0] * 4}\n\n"
              "def judge(inputs, out):\n    return True",
    "probes": "def measured(key):\n    return {'zeros': [0.0] * 4, 'dead': [0.0] * 4}",
}

SHADOWS_SETUP = '''
# The names q4's setup cells bind, bound first by the student: the setup runs again in each probe's cell.
network = lambda c: nn.Sequential(nn.ReLU())
measured = lambda key: {"zeros": [0.0] * 4, "dead": [0.0] * 4}
reference = lambda net, x: {"zeros": [0.0] * 4, "dead": [0.0] * 4}
'''


def _forged_setup(base):
    """Cells that claim to be q4's setup cells, one for each side, right after q4's answer."""
    notebook = nbformat.from_dict(base)
    at = notebook.cells.index(_answer(notebook, "q4")) + 1
    for side, source in FORGED_SETUP.items():
        notebook.cells.insert(at, nbformat.v4.new_code_cell(
            source, metadata={"grader": {"id": "q4", "kind": "setup", "for": side}}))
    return notebook


def cases() -> dict[str, tuple[nbformat.NotebookNode, float]]:
    """name → (notebook, the points its honest content deserves), from full marks (``full_marks()``)."""
    reference, blank = notebooks()
    full = full_marks()
    blank_q1 = {"q1": _answer(blank, "q1").source}
    return {
        "allclose_patched": (_with(blank, before="import torch\ntorch.allclose = lambda *a, **k: True\n"
                                                 "torch.equal = lambda *a, **k: True"), 0),
        "checks_replaced": (_with(blank, before="import autograder.checks as c\n"
                                                "c.same_function = lambda *a, **k: True"), 0),
        "showtraceback_silenced": (_with(blank, before="get_ipython().showtraceback = lambda *a, **k: None\n"
                                                       "get_ipython().showsyntaxerror = lambda *a, **k: None"), 0),
        "input_transformer_blanks": (_with(blank, before="get_ipython().input_transformers_post.append("
                                                         "lambda lines: ['pass\\n'])"), 0),
        "ast_transformer_wraps": (_with(blank, before=(
            "import ast\nclass Swallow(ast.NodeTransformer):\n    def visit_Module(self, node):\n"
            "        handler = ast.ExceptHandler(type=None, name=None, body=[ast.Pass()])\n"
            "        node.body = [ast.Try(body=node.body or [ast.Pass()], handlers=[handler], orelse=[], finalbody=[])]\n"
            "        return ast.fix_missing_locations(node)\n"
            "get_ipython().ast_transformers.append(Swallow())")), 0),
        "steals_solutions": (_with(blank, before=STEAL_SOLUTIONS), 0),
        "importlib_reference": (_with(blank, answers={"q1": (
            "import importlib\n\ndef alexnet_28(num_classes=10):\n"
            "    return importlib.import_module('book.models').AlexNet(num_classes, 1, width=0.25, towers=1,"
            " lrn=False, stem='small', pool_size=2)")}), 0),
        "subclasses_reference": (_with(reference, answers={"q1": (
            "from book.models import AlexNet\n\nclass Mine(AlexNet):\n    pass\n\ndef alexnet_28(num_classes=10):\n"
            "    return Mine(num_classes, 1, width=0.25, towers=1, lrn=False, stem='small', pool_size=2)")}), full - 6),
        "torchvision_models": (_with(reference, answers={"q1": (
            "from torchvision.models import alexnet\n\ndef alexnet_28(num_classes=10):\n"
            "    return alexnet(num_classes=num_classes)")}), full - 6),
        "always_equal": (_with(blank, answers={"q2": (
            "class Yes(int):\n    def __eq__(self, other):\n        return True\n\n"
            "def conv_output_size(n, kernel, stride=1, padding=0):\n    return Yes(0)"), "q3": (
            "class Anything:\n    def __eq__(self, other):\n        return True\n\n"
            "def conv_params(c_in, c_out, kernel, groups=1, bias=True):\n    return Anything()\n\n"
            "def conv_macs(c_in, c_out, kernel, out_size, groups=1):\n    return Anything()")}), 0),
        "forged_exports": (_with(blank, after=FORGED_EXPORTS, before=FORGED_EXPORTS), 0),
        "harms_others": (_with(blank, before=HARM_OTHERS, after=HARM_OTHERS), 0),
        "detached_process": (_with(reference, before=DETACHED), full),
        "floods_fd1": (_with(reference, after="import os\nfor _ in range(100):\n    os.write(1, b'x' * 1_000_000)"), full),
        "escalates": (_with(reference, after=ESCALATE), full),
        "fakes_timeout_text": (_with(reference, answers={"q2": FAKE_STATUS}), full - 2),
        "forges_events": (_with(blank, before=EVENT_FORGERY), 0),
        "helper_launders_torch": (_with(reference, before=(
            "def helper(n, k, s, p):\n    return nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, n, n)).shape[-1]"),
            answers={"q2": "def conv_output_size(n, kernel, stride=1, padding=0):\n"
                           "    return helper(n, kernel, stride, padding)"}), full - 2),
        "blank_q1_else_reference": (_with(reference, answers=blank_q1), full - 6),
        # issue 22: the submission's metadata and ids decide nothing
        "stripped_metadata_library": (_strip(_with(reference, answers={"q2": LIBRARY_Q2, "q3": LIBRARY_Q3}),
                                             qids={"q2", "q3"}), full - 6),
        "stripped_ids_and_metadata_library": (_strip(_with(reference, answers={"q2": LIBRARY_Q2, "q3": LIBRARY_Q3}),
                                                     ids=True), full - 6),
        "stripped_ids_and_metadata_honest": (_strip(reference, ids=True), full),
        "relabelled_metadata_library": (_relabelled(reference), full - 6),
        "forged_answer_cell": (_forged(reference), full - 2),
        "moved_answer_honest": (_moved(reference, HONEST_Q2), full),
        "moved_answer_library": (_moved(reference, LIBRARY_Q2), full - 2),
        "deleted_stub_answer_elsewhere_library": (_moved(reference, "import torch\n\n" + LIBRARY_Q2.replace(
            "conv_output_size(n: int, kernel: int, stride: int = 1, padding: int = 0) -> int", "conv_output_size(n, k, s=1, p=0)")
            .replace("kernel, stride, padding", "k, s, p"), stub_left=False), full - 2),
        "duplicated_every_cell": (_duplicated(reference), full),
        "hostile_export_files": (_with(blank, after=HOSTILE_EXPORTS), 0),
        "exports_folder_is_a_link": (_with(blank, after=EXPORTS_LINK), 0),
        # setup cells are the instructor's only
        "forged_setup_cells": (_forged_setup(blank), 0),
        "shadows_setup_names": (_with(reference, before=SHADOWS_SETUP), full),
    }
