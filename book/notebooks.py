"""Execute chapter notebooks for real and record how: ``python -m book.notebooks chapters/*.ipynb``.

Outputs stored in the book come only from this: each notebook runs top to bottom in a fresh
kernel, in the machine's profile, and its metadata records the profile, device, versions and time.

The kernel runs with ``BOOK_STORED_RUN=1`` (:data:`book.runtime.STORED_RUN`): its
outputs are for a static page, so ``fit`` shows text progress and one final figure, and
``viz.feature_explorer`` is plain HTML and JavaScript; no widget state is stored. A
notebook is skipped when its stored fingerprint (code cells, the ``book`` package's
sources, profile, CPU capability and bf16 setting) matches the current one; ``--force``
runs it anyway.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import torch
import torchvision
from nbclient import NotebookClient

from .profiles import default_profile
from .runtime import STORED_RUN, default_bf16, default_device

BOOK_SOURCES = Path(__file__).resolve().parent


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(notebook, profile: str) -> dict:
    """What a notebook's stored outputs depend on. Markdown cells are left out: editing
    prose changes no output."""
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    sources = sorted(BOOK_SOURCES.rglob("*.py"))
    device = default_device()
    parts = {
        "code_cells": _sha(json.dumps(code)),
        "book_sources": _sha(json.dumps([[p.relative_to(BOOK_SOURCES).as_posix(), p.read_text()] for p in sources])),
        "profile": profile,
        "device": device.type,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16": default_bf16(device),
    }
    return {"sha": _sha(json.dumps(parts, sort_keys=True)), **parts}


_WHAT = {"code_cells": "code cells changed", "book_sources": "book/ sources changed"}


def reasons_to_run(path: Path, profile: str | None = None) -> list[str]:
    """Why ``path`` must be executed again; empty when its stored fingerprint is the current one."""
    profile = profile or default_profile()
    notebook = nbformat.read(path, as_version=4)
    stored = notebook.metadata.get("modern_cnns", {}).get("fingerprint")
    if not stored:
        return ["no fingerprint stored"]
    current = fingerprint(notebook, profile)
    if stored.get("sha") == current["sha"]:
        return []
    return [_WHAT.get(key, f"{key} {stored.get(key)} -> {value}") for key, value in current.items()
            if key != "sha" and stored.get(key) != value] or ["fingerprint changed"]


def execute(path: Path, profile: str | None = None, timeout: int = 900) -> float:
    """Run ``path`` in place with ``BOOK_PROFILE=profile`` and ``BOOK_STORED_RUN=1``;
    returns the seconds it took."""
    profile = profile or default_profile()
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata.pop("widgets", None)  # nbclient adds it back only if widgets were shown this time
    stamp = fingerprint(notebook, profile)
    env = {"BOOK_PROFILE": profile, STORED_RUN: "1", "TQDM_DISABLE": "1"}  # TQDM_DISABLE: terminal bars of other code
    if os.environ.get("BOOK_DATA_DIR"):  # the kernel runs in the notebook's folder: pass an absolute path
        env["BOOK_DATA_DIR"] = str(Path(os.environ["BOOK_DATA_DIR"]).resolve())
    started = time.perf_counter()
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env={**os.environ, **env})  # the kernel's environment; this process's own is left as it is
    seconds = time.perf_counter() - started
    if notebook.metadata.pop("widgets", None) is not None:  # a widget shown despite the stored run: it would be dead
        widget_cells = [i for i, cell in enumerate(notebook.cells) if any(
            "application/vnd.jupyter.widget-view+json" in output.get("data", {}) for output in cell.get("outputs", []))]
        print(f"  warning: cells {widget_cells} of {path} showed widgets, which have no kernel in the book; "
              "their state is not stored", flush=True)
    notebook.metadata["modern_cnns"] = {
        "profile": profile,
        "device": str(default_device()),
        "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the ISA PyTorch used: AVX2, AVX512...
        "bf16": default_bf16(default_device()),  # whether fit trained in bf16 autocast by default
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "run_seconds": round(seconds, 1),
        "executed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": stamp,
    }
    nbformat.write(notebook, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--profile", help="default: BOOK_PROFILE, else from the device")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--force", action="store_true", help="execute even notebooks whose fingerprint matches")
    args = parser.parse_args(argv)
    profile = args.profile or default_profile()
    for path in args.notebooks:
        reasons = ["--force"] if args.force else reasons_to_run(path, profile)
        if not reasons:
            stamp = nbformat.read(path, as_version=4).metadata["modern_cnns"]["fingerprint"]
            print(f"skipping {path}: up to date (fingerprint {stamp['sha']}: same code cells and book/ sources, "
                  f"profile {stamp['profile']}, {stamp['device']}, {stamp['cpu_capability']}, "
                  f"bf16 {'on' if stamp['bf16'] else 'off'}); --force runs it anyway", flush=True)
            continue
        print(f"executing {path} ({'; '.join(reasons)}) ...", flush=True)
        seconds = execute(path, profile, args.timeout)
        print(f"  done in {seconds / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
