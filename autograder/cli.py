"""``python -m autograder release``, ``grade HW SUBMISSION... --out DIR [--shard i/n --key FILE]``,
``merge SHARD_DIR... --out DIR`` and ``key FILE``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import cells, defaults, keys
from . import grade as grading
from . import merge as merging
from . import handwork
from . import release as releasing
from . import exports, items, report, sandbox


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description="Release and grade homework.")
    commands = parser.add_subparsers(dest="command", required=True)
    rel = commands.add_parser("release", help="write student notebooks into homework/ from the instructor sources")
    rel.add_argument("sources", nargs="*", type=Path, help="default: every SOURCE/*.ipynb")
    rel.add_argument("--source", type=Path, default=releasing.SOURCE_DIR,
                     help="folder of instructor notebooks (default: autograder/source/, the examples)")
    rel.add_argument("--out", type=Path, default=releasing.HOMEWORK_DIR)
    rel.add_argument("--check", action="store_true", help="write nothing; exit 1 if the output is out of date")
    gr = commands.add_parser("grade", help="grade submissions: probes in a sandbox, judges outside it")
    gr.add_argument("homework", help="e.g. hw1_alexnet, or a path to an instructor notebook")
    gr.add_argument("submissions", nargs="+", type=Path, help="notebooks or folders of notebooks")
    gr.add_argument("--source", type=Path, default=releasing.SOURCE_DIR,
                    help="folder of instructor notebooks (default: autograder/source/)")
    gr.add_argument("--out", type=Path, required=True)
    gr.add_argument("--workers", type=int, default=defaults.WORKERS, help="submissions graded at once (default: %(default)s)")
    gr.add_argument("--timeout", type=float, default=defaults.CELL_TIMEOUT, help="seconds per cell (default: %(default)g)")
    gr.add_argument("--memory-gib", type=float, default=defaults.MEMORY / 2**30,
                    help="address-space limit of each run (default: %(default)g)")
    gr.add_argument("--output-cap", type=int, default=defaults.OUTPUT_CAP,
                    help="bytes of output read before a run is stopped (default: %(default)s)")
    gr.add_argument("--no-sandbox", action="store_true", help="run without bubblewrap (grades are NOT trustworthy)")
    gr.add_argument("--shard", help="grade only part i of n (0 <= i < n), e.g. $SLURM_ARRAY_TASK_ID/8; needs --key")
    gr.add_argument("--key", type=Path, help="the grader key shared by every shard (see: key)")
    handwork.add_late_flags(gr)
    mg = commands.add_parser("merge", help="combine shard folders into one grades.csv, feedback set and summary")
    mg.add_argument("shards", nargs="+", type=Path)
    mg.add_argument("--out", type=Path, required=True)
    ky = commands.add_parser("key", help="write a new grader key for the shards of one class")
    ky.add_argument("file", type=Path)
    rp = commands.add_parser("report", help="item analysis of a graded folder: OUT/report.html and OUT/items.csv")
    rp.add_argument("out", type=Path, help="a folder written by grade or merge")
    rp.add_argument("--source", type=Path, default=releasing.SOURCE_DIR, help="folder of instructor notebooks "
                    "(for the tests' order and points; default: autograder/source/)")
    exports.add_parsers(commands)
    handwork.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"release": _release, "key": _key, "merge": _merge, "grade": _grade, "report": _report,
                "export": exports.run, **handwork.COMMANDS}[args.command](args)
    except (FileNotFoundError, ValueError, cells.FormatError, sandbox.SandboxUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except grading.SelfCheckFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted: every run was stopped and its folder removed; run the same command to resume",
              file=sys.stderr)
        return 130


def limits(args) -> sandbox.Limits:
    """The sandbox's limits from the flags; the others keep ``defaults``."""
    return sandbox.Limits(memory=int(args.memory_gib * 2**30), output=args.output_cap)


def _report(args) -> int:
    results = items.load(args.out)
    page, table = items.write(results, args.out, items.source_questions(results, args.source))
    print(f"wrote {page} and {table}")
    return 0


def _key(args) -> int:
    try:
        keys.new_key_file(args.file)
    except FileExistsError:
        print(f"error: {args.file} exists already; a key is never overwritten", file=sys.stderr)
        return 2
    print(f"wrote {args.file}: give it to every shard with --key {args.file}, and keep it private")
    return 0


def _merge(args) -> int:
    merged = merging.merge(args.shards, args.out)
    print(f"merged {len(args.shards)} shards, {len(merged)} students: wrote {args.out / 'grades.csv'}, "
          f"{args.out / 'summary.json'}, {args.out / 'histogram.png'}, results/ and feedback/")
    if merged:
        print("wrote {} and {} (item analysis)".format(*items.write(merged, args.out)))
    return 0


def _grade(args) -> int:
    shard = grading.parse_shard(args.shard) if args.shard else None
    late = handwork.late_of(args)   # a bad deadline, policy or submissions.csv fails before any run
    if args.no_sandbox:
        print("WARNING: --no-sandbox: student code runs with your permissions and can change its own "
              "grade and others'. These grades are not trustworthy.", file=sys.stderr)
    else:
        sandbox.check_available()
    results = grading.grade(args.homework, args.submissions, args.out, args.workers, args.timeout,
                            source_dir=args.source, sandbox=not args.no_sandbox, limits=limits(args),
                            shard=shard, key_file=args.key, late=late)
    for r in results:
        manual = f" (+{r.manual_max:g} by hand)" if r.manual_max else ""
        print(f"{r.student:<30} {report.points(r.total):>5} / {r.max_points:<5g}{manual} {r.status}")
    by_hand = ", written/ (answers to grade by hand)" if any(r.manual_max for r in results) else ""
    print(f"wrote {args.out / 'grades.csv'}, {args.out / 'summary.json'}, {args.out / 'histogram.png'}, "
          f"and per-student results/ and feedback/{by_hand}")
    if results and shard is None:   # a shard's report would describe part of the class: merge writes it
        print("wrote {} and {} (item analysis)".format(*items.write(results, args.out, items.source_questions(results, args.source))))
    not_graded = [r.student for r in results if not r.scored]
    if not_graded:
        print(f"{len(not_graded)} submission(s) NOT graded because the grader failed on them twice "
              f"({', '.join(not_graded[:5])}{', ...' if len(not_graded) > 5 else ''}): they are not zeros. "
              "Run the same command again (on a less busy machine) to grade just those.", file=sys.stderr)
        return 1
    return 0


def _release(args) -> int:
    paths = args.sources or None
    if args.check:
        stale = releasing.stale(paths, args.out, args.source)
        if stale:
            print(f"{args.out} is out of date for: {', '.join(stale)}. Run: python -m autograder release",
                  file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    for path in releasing.release(paths, args.out, args.source):
        print(f"wrote {path}")
    return 0
