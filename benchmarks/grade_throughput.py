"""Grading throughput, sandboxed, for 1, 2 and 3 workers, and the sandbox's cost against --no-sandbox.

    python benchmarks/grade_throughput.py --homework hw1_alexnet --copies 12

Every copy gets its own bubblewrap sandbox, process and Jupyter kernel, as real submissions do. All
configurations run in the same invocation, so their ratios compare like with like. On an AVX-512 CPU,
emulate the 2-core AVX2 floor with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
(the grader passes them into the sandbox).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from autograder import grade, release


def start_up_costs() -> dict[str, float]:
    """Seconds of the pieces every run pays, each in a fresh process (median of 3)."""
    pieces = {"python": "pass", "pytest+nbval": "import pytest, nbval.plugin",
              "ipykernel": "import ipykernel.kernelapp", "torch": "import torch"}
    costs = {}
    for name, code in pieces.items():
        times = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - started)
        costs[name] = sorted(times)[1]
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homework", default="hw1_alexnet")
    parser.add_argument("--copies", type=int, default=12)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--baseline-workers", type=int, default=2, help="workers of the --no-sandbox comparison")
    args = parser.parse_args()

    isa = os.environ.get("ATEN_CPU_CAPABILITY", "native")
    print(f"{os.cpu_count()} CPUs, ATen ISA: {isa}")
    for name, seconds in start_up_costs().items():
        print(f"  start-up piece {name:<14} {seconds:.2f} s (outside the sandbox)")
    source = release.SOURCE_DIR / f"{args.homework}.ipynb"
    reference = release.student_version(nbformat.read(source, as_version=4), keep_solutions=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        for i in range(args.copies):
            nbformat.write(reference, folder / f"student{i:03d}.ipynb")
        rates = {}
        configurations = [(w, True) for w in args.workers] + [(args.baseline_workers, False)]
        for workers, sandboxed in configurations:
            out = Path(tmp) / f"out-{workers}-{sandboxed}"
            started = time.perf_counter()
            results = grade.grade(args.homework, [folder], out, workers=workers, progress=False, sandbox=sandboxed)
            seconds = time.perf_counter() - started
            assert all(r["total"] == r["max_points"] and r["status"] == "ok" for r in results), \
                "the reference solution lost points"
            rates[(workers, sandboxed)] = len(results) / seconds * 60
            per_run = sorted(r["seconds"] for r in results)[len(results) // 2]
            print(f"{args.homework}: {len(results)} submissions, {workers} worker(s), "
                  f"{'sandbox' if sandboxed else 'NO sandbox'}: {seconds:.1f} s = "
                  f"{rates[(workers, sandboxed)]:.1f} submissions/min (median run {per_run:.2f} s)")
    same = (args.baseline_workers, True)
    if same in rates:
        print(f"sandbox cost at {args.baseline_workers} workers: no-sandbox/sandbox throughput = "
              f"{rates[(args.baseline_workers, False)] / rates[same]:.2f}x")


if __name__ == "__main__":
    main()
