"""``python -m autograder release`` and ``python -m autograder grade HW SUBMISSION... --out DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import grade as grading
from . import release as releasing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description="Release and grade homework.")
    commands = parser.add_subparsers(dest="command", required=True)
    rel = commands.add_parser("release", help="write student notebooks into homework/ from autograder/source/")
    rel.add_argument("sources", nargs="*", type=Path, help="default: every autograder/source/*.ipynb")
    rel.add_argument("--out", type=Path, default=releasing.HOMEWORK_DIR)
    rel.add_argument("--check", action="store_true", help="write nothing; exit 1 if homework/ is out of date")
    gr = commands.add_parser("grade", help="grade submissions against the hidden tests")
    gr.add_argument("homework", help="e.g. hw1_alexnet, or a path to an instructor notebook")
    gr.add_argument("submissions", nargs="+", type=Path, help="notebooks or folders of notebooks")
    gr.add_argument("--out", type=Path, required=True)
    gr.add_argument("--workers", type=int, default=1)
    gr.add_argument("--timeout", type=float, default=30, help="seconds per cell")
    args = parser.parse_args(argv)

    if args.command == "release":
        if args.check:
            stale = releasing.stale(args.sources or None, args.out)
            if stale:
                print(f"homework/ is out of date for: {', '.join(stale)}. Run: python -m autograder release",
                      file=sys.stderr)
                return 1
            print("homework/ is up to date")
            return 0
        for path in releasing.release(args.sources or None, args.out):
            print(f"wrote {path}")
        return 0

    try:
        results = grading.grade(args.homework, args.submissions, args.out, args.workers, args.timeout)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for r in results:
        print(f"{r['student']:<30} {r['total']:>5g} / {r['max_points']:<5g} {r['status']}")
    print(f"wrote {args.out / 'grades.csv'}, {args.out / 'summary.json'}, {args.out / 'histogram.png'}, "
          f"and per-student results/ and feedback/")
    return 0
