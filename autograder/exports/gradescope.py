"""``export gradescope --homework hw1_alexnet --out hw1_gradescope.zip [--source DIR] [--key FILE]``.

Writes a Gradescope autograder zip (its specification: setup.sh and run_autograder at the root; Gradescope
unpacks the zip into /autograder/source, puts the student's files in /autograder/submission and reads
/autograder/results/results.json). What the zip holds:

- ``setup.sh``: installs bubblewrap and Python 3.11, and the grading packages of ``requirements.txt``
  (pinned as in the course's own) into /autograder/venv;
- ``run_autograder``: runs ``python -m autograder.exports.gradescope_run`` (``gradescope_run.py``) with
  the root in ``GRADESCOPE_ROOT`` (default /autograder) and Python in ``GRADESCOPE_PYTHON``;
- ``autograder/`` and ``book/`` (the grader and the library its judges import; ``autograder/source/``'s
  examples are left out), the one instructor notebook in ``instructor/``, the grader key ``grader.key``
  (seeds the judges' inputs: keep the zip private), and ``gradescope.json`` (homework, cell timeout,
  the hidden tests' visibility).

Inside Gradescope it grades the one submission exactly as ``grade`` does, in the same bubblewrap sandbox
with the same limits, after the same self-check of the instructor's solution. When the sandbox cannot
start there (bubblewrap needs user namespaces; a container may forbid them) or the grader fails on the
submission, results.json says "not graded" and gives no score at all (never a zero), and the script
exits 1 so that Gradescope marks the run as failed for the instructor.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import zipfile
from pathlib import Path

from .. import keys
from ..grade import Assignment, find_source
from ..release import SOURCE_DIR
from ..sandbox import REPO

GRADING_PACKAGES = ("torch", "torchvision", "numpy", "pillow", "matplotlib", "tqdm", "ipykernel", "nbformat",
                    "nbclient", "jupyter_client", "nbval", "safetensors", "pytest", "pytest-timeout")
HIDDEN_VISIBILITY = "after_published"

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image.
set -euo pipefail
apt-get update
apt-get install -y --no-install-recommends bubblewrap ca-certificates software-properties-common
if ! command -v python3.11 >/dev/null; then
  add-apt-repository -y ppa:deadsnakes/ppa && apt-get update
fi
apt-get install -y --no-install-recommends python3.11 python3.11-venv
python3.11 -m venv /autograder/venv
/autograder/venv/bin/pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \\
    -r /autograder/source/requirements.txt
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission. GRADESCOPE_ROOT and GRADESCOPE_PYTHON let a test run it
# in a folder laid out like Gradescope's (root/source, root/submission, root/results).
ROOT="${GRADESCOPE_ROOT:-/autograder}"
PYTHON="${GRADESCOPE_PYTHON:-$ROOT/venv/bin/python}"
cd "$ROOT/source" || exit 1
export GRADESCOPE_ROOT="$ROOT" PYTHONPATH="$ROOT/source" PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
exec "$PYTHON" -m autograder.exports.gradescope_run
"""


def _package_files() -> list[tuple[Path, str]]:
    """(file, its name in the zip) for the grader and the library, without the examples or caches."""
    found = []
    for top in ("autograder", "book"):
        for path in sorted((REPO / top).rglob("*")):
            relative = path.relative_to(REPO)
            if (not path.is_file() or "__pycache__" in relative.parts or relative.parts[:2] == ("autograder", "source")
                    or path.suffix in (".pyc",)):
                continue
            if relative.parts[:2] == ("autograder", "deploy"):
                continue
            found.append((path, relative.as_posix()))
    return found


def requirements() -> str:
    lines = [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    keep = [line for line in lines if line.split("==")[0].lower().replace("_", "-") in
            {p.replace("_", "-") for p in GRADING_PACKAGES}]
    return "\n".join(keep) + "\n"


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((stat.S_IFREG | (0o755 if executable else 0o644)) << 16)
    archive.writestr(info, data)


def build(homework: str, out: Path, source_dir: Path = SOURCE_DIR, key_file: Path | None = None,
          cell_timeout: float | None = None, self_check: bool = True) -> Path:
    """Write the zip; return its path. The instructor notebook is validated first (as ``grade`` does)."""
    from ..defaults import CELL_TIMEOUT
    source = find_source(homework, source_dir)
    assignment = Assignment.read(source)   # refuses a notebook that cannot be graded, naming the cell
    key = keys.read_key(key_file) if key_file else secrets.token_bytes(keys.KEY_BYTES)
    config = {"homework": assignment.name, "notebook": f"instructor/{source.name}",
              "cell_timeout": cell_timeout or CELL_TIMEOUT, "self_check": self_check,
              "hidden_visibility": HIDDEN_VISIBILITY,
              "points": sum(q.points for q in assignment.questions),
              "written": {w.id: w.points for w in assignment.written}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        _add(archive, "setup.sh", SETUP.encode(), executable=True)
        _add(archive, "run_autograder", RUN.encode(), executable=True)
        _add(archive, "requirements.txt", requirements().encode())
        _add(archive, "gradescope.json", json.dumps(config, indent=2).encode())
        _add(archive, "grader.key", key.hex().encode() + b"\n")
        _add(archive, config["notebook"], source.read_bytes())
        for path, name in _package_files():
            _add(archive, name, path.read_bytes())
    os.replace(partial, out)
    return out


def add_parser(lms) -> None:
    parser = lms.add_parser("gradescope", help="a Gradescope autograder zip that runs this grader on one submission")
    parser.add_argument("--homework", required=True, help="e.g. hw1_alexnet, or a path to an instructor notebook")
    parser.add_argument("--out", type=Path, required=True, help="the zip to write, e.g. hw1_gradescope.zip")
    parser.add_argument("--source", type=Path, default=SOURCE_DIR, help="folder of instructor notebooks")
    parser.add_argument("--key", type=Path, help="a grader key (default: a new one, kept only in the zip)")
    parser.add_argument("--timeout", type=float, help="seconds per cell (default: the grader's)")
    parser.add_argument("--no-self-check", action="store_true",
                        help="skip grading the instructor's solution before each submission (halves the time)")


def run(args) -> int:
    path = build(args.homework, args.out, args.source, args.key, args.timeout, not args.no_self_check)
    names = zipfile.ZipFile(path).namelist()
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB, {len(names)} files): upload it as the assignment's "
          "autograder in Gradescope (Configure Autograder → Zip file upload). It holds the grader key and your "
          "solution: keep it private.")
    return 0


