"""Grading throughput: N copies of a reference solution, with 1 and with 2 workers, in one run.

    python benchmarks/grade_throughput.py --homework hw1_alexnet --copies 8

Every copy gets its own process and Jupyter kernel, as real submissions do.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nbformat

from autograder import grade, release


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homework", default="hw1_alexnet")
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()

    source = release.SOURCE_DIR / f"{args.homework}.ipynb"
    reference = release.student_version(nbformat.read(source, as_version=4), keep_solutions=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        for i in range(args.copies):
            nbformat.write(reference, folder / f"student{i:03d}.ipynb")
        rates = {}
        for workers in args.workers:
            started = time.perf_counter()
            results = grade.grade(args.homework, [folder], Path(tmp) / f"out{workers}", workers=workers, progress=False)
            seconds = time.perf_counter() - started
            assert all(r["total"] == r["max_points"] for r in results), "the reference solution lost points"
            rates[workers] = len(results) / seconds * 60
            print(f"{args.homework}: {len(results)} submissions with {workers} worker(s) in {seconds:.1f} s "
                  f"= {rates[workers]:.1f} submissions/min ({seconds / len(results):.2f} s each)")
    if len(rates) > 1:
        low, high = min(rates), max(rates)
        print(f"speed-up {high} vs {low} workers: {rates[high] / rates[low]:.2f}x")


if __name__ == "__main__":
    main()
