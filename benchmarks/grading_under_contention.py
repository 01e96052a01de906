"""Grade 30 hw1 submissions on a quiet machine, then beside one CPU-burning process per core (issue 22).

    python benchmarks/grading_under_contention.py [--workers 3] [--copies 4]

The class: honest variants of the reference solution (as released; cell ids and grader metadata
stripped; an answer moved into a new cell; every cell duplicated; saved by an old Jupyter with no ids),
each ``--copies`` times, and the issue-22 attack cases from ``tests/attacks.py``, each with the points
its honest content deserves. Each batch is the real command line (``python -m autograder grade``, in
the bubblewrap sandbox, with its self-check). What must hold: no honest submission below full marks,
and every submission exactly its deserved points or "not graded" (never a zero the grader caused).
Prints a table and the contended/quiet wall-time ratio; writes ``benchmarks/results/grading-under-contention.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import attacks  # noqa: E402

HONEST = {
    "as_released": lambda ref: ref,
    "no_ids_no_metadata": lambda ref: attacks._strip(ref, ids=True),
    "moved_answer": lambda ref: attacks._moved(ref, attacks.HONEST_Q2),
    "duplicated_cells": lambda ref: attacks._duplicated(ref),
    "metadata_stripped": lambda ref: attacks._strip(ref),
}
ATTACKS = ("stripped_metadata_library", "stripped_ids_and_metadata_library", "relabelled_metadata_library",
           "forged_answer_cell", "moved_answer_library", "deleted_stub_answer_elsewhere_library",
           "hostile_export_files", "exports_folder_is_a_link", "helper_launders_torch", "torchvision_models")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def the_class(folder: Path, copies: int) -> dict[str, float]:
    """Write the submissions; return student → deserved points."""
    reference, _ = attacks.notebooks()
    full = attacks.full_marks()
    deserved = {}
    for name, make in HONEST.items():
        for copy in range(copies):
            student = f"honest_{name}_{copy}"
            nbformat.write(make(nbformat.from_dict(reference)), folder / f"{student}.ipynb")
            deserved[student] = full
    suite = attacks.cases()
    for name in ATTACKS:
        notebook, points = suite[name]
        nbformat.write(notebook, folder / f"attack_{name}.ipynb")
        deserved[f"attack_{name}"] = points
    return deserved


def batch(folder: Path, out: Path, workers: int) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", "hw1_alexnet", str(folder), "--out", str(out),
                           "--workers", str(workers)], cwd=REPO, capture_output=True, text=True)
    return time.perf_counter() - started, done.returncode, done.stderr[-2000:]


def burners(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True:\n    pass"]) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--copies", type=int, default=4)
    args = parser.parse_args()
    cores = os.cpu_count()
    report = {"cpu": cpu_model(), "cores": cores, "isa": os.environ.get("ATEN_CPU_CAPABILITY", "native"),
              "workers": args.workers, "batches": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        deserved = the_class(folder, args.copies)
        print(f"{len(deserved)} submissions, {cores} cores ({report['cpu']}), {args.workers} workers")
        for condition in ("quiet", "contended"):
            load = burners(cores) if condition == "contended" else []
            try:
                seconds, code, stderr = batch(folder, Path(tmp) / condition, args.workers)
            finally:
                for process in load:
                    process.kill()
                    process.wait()
            results = {p.stem: json.loads(p.read_text()) for p in (Path(tmp) / condition / "results").glob("*.json")}
            rows = {s: {"deserved": d, "total": results.get(s, {}).get("total", "missing"),
                        "status": results.get(s, {}).get("status", "missing")} for s, d in deserved.items()}
            wrong = {s: r for s, r in rows.items() if r["total"] != r["deserved"] and r["total"] is not None}
            honest_low = [s for s in rows if s.startswith("honest") and rows[s]["total"] != attacks.full_marks()]
            summary = {"seconds": round(seconds, 1), "exit": code, "rows": rows, "wrong": sorted(wrong),
                       "honest_below_full": honest_low,
                       "not_graded": sorted(s for s, r in rows.items() if r["total"] is None),
                       "graded_on_second_run": sorted(s for s, r in rows.items() if "second run" in str(r["status"]))}
            report["batches"][condition] = summary
            print(f"\n{condition}: {seconds:.1f} s, exit {code}, {len(wrong)} wrong, {len(honest_low)} honest below "
                  f"full, {len(summary['not_graded'])} not graded, {len(summary['graded_on_second_run'])} retried")
            if code not in (0, 1):
                print(stderr)
            for student, row in sorted(rows.items()):
                print(f"  {student:<44} {row['deserved']:>4g} {str(row['total']):>5} {row['status'][:90]}")
    quiet, contended = report["batches"]["quiet"]["seconds"], report["batches"]["contended"]["seconds"]
    report["contended_over_quiet"] = round(contended / quiet, 2)
    print(f"\nwall time contended / quiet: {report['contended_over_quiet']:.2f}x")
    target = REPO / "benchmarks" / "results" / "grading-under-contention.json"
    target.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
