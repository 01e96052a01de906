"""Execute chapter notebooks for real and record how: ``python -m book.notebooks chapters/*.ipynb``.

Outputs stored in the book come only from this: each notebook runs top to bottom in a fresh
kernel, in the machine's profile, and its metadata records the profile, device, versions and time.
"""

from __future__ import annotations

import argparse
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
from .train import default_bf16, default_device


def execute(path: Path, profile: str | None = None, timeout: int = 900) -> float:
    """Run ``path`` in place with ``BOOK_PROFILE=profile``; returns the seconds it took."""
    profile = profile or default_profile()
    notebook = nbformat.read(path, as_version=4)
    os.environ["BOOK_PROFILE"] = profile
    if os.environ.get("BOOK_DATA_DIR"):  # the kernel runs in the notebook's folder: pass an absolute path
        os.environ["BOOK_DATA_DIR"] = str(Path(os.environ["BOOK_DATA_DIR"]).resolve())
    started = time.perf_counter()
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    seconds = time.perf_counter() - started
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
    }
    nbformat.write(notebook, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--profile", help="default: BOOK_PROFILE, else from the device")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        print(f"executing {path} ...", flush=True)
        seconds = execute(path, args.profile, args.timeout)
        print(f"  done in {seconds / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
