"""The command line of ``manual``, ``finalize`` and ``rejudge`` (registered by ``cli.build_parser``), and
the late-work flags of ``grade``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import late, manual, rejudge
from .release import SOURCE_DIR

BLANK_HELP = ("count blank points as 0 (marked 'not graded by hand' in the status). Without it a blank is "
              "refused: a 0 nobody gave would be the grader's zero, not the student's")


def add_parsers(commands) -> None:
    ma = commands.add_parser("manual", help="write OUT/manual/<question>.csv and .md, one sheet per written "
                             "question (run again: new students are added, filled-in rows kept)")
    ma.add_argument("out", type=Path, help="a folder written by grade or merge")
    ma.add_argument("--source", type=Path, default=SOURCE_DIR, help="folder of instructor notebooks (the model answers)")
    fi = commands.add_parser("finalize", help="check the hand-grading sheets, then write grades.csv (automatic + "
                             "manual, late penalty), grades_automatic.csv and the feedback with comments")
    fi.add_argument("out", type=Path)
    fi.add_argument("--source", type=Path, default=SOURCE_DIR)
    fi.add_argument("--allow-blank", action="store_true", help=BLANK_HELP)
    rj = commands.add_parser("rejudge", help="judge the kept exports again with the current judges (no kernel); "
                             "refused if a probe changed")
    rj.add_argument("out", type=Path)
    rj.add_argument("--source", type=Path, default=SOURCE_DIR)


def add_late_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deadline", help="ISO 8601 with a timezone, e.g. 2026-03-01T23:59:00+01:00 or ...Z "
                        "(a time without one is refused); submission times come from SUBMISSIONS/submissions.csv "
                        "(student,file,submitted_at), else the file's modification time")
    parser.add_argument("--late-policy", help=f"{late.POLICY_FORMS.replace('%', '%%')}; a share of the points earned, taken after hand "
                        "grading (finalize recomputes it). Default with --deadline: none (late days reported only)")


def late_of(args) -> late.Late | None:
    """The ``late.Late`` of grade's flags (checked before anything is graded), warnings printed."""
    if args.deadline is None:
        if args.late_policy is not None:
            raise late.LateError("--late-policy needs --deadline")
        if (args.out / late.LATE_FILE).exists():
            print(f"note: grading without --deadline: the deadline of the earlier run ({args.out / late.LATE_FILE}) "
                  "is no longer applied; pass --deadline and --late-policy again to keep it", file=sys.stderr)
        return None
    rules, warnings = late.for_class(args.deadline, args.late_policy or "none", args.submissions)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return rules


def _manual(args) -> int:
    added = manual.write_sheets(args.out, args.source)
    for qid, students in added.items():
        print(f"wrote {args.out / manual.MANUAL_DIR / (qid + '.csv')} ({len(students)} new row(s)) and "
              f"{args.out / manual.MANUAL_DIR / (qid + '.md')}")
    print(f"fill in points (and comments) in the .csv files, then: python -m autograder finalize {args.out}")
    return 0


def _finalize(args) -> int:
    finals = manual.finalize(args.out, args.source, args.allow_blank)
    blank = sum(bool(f.blank) for f in finals)
    print(f"wrote {args.out / 'grades.csv'} (final), {args.out / manual.AUTOMATIC_CSV} and feedback/ for "
          f"{len(finals)} students" + (f"; {blank} with blank points counted as 0" if blank else ""))
    return 0


def _rejudge(args) -> int:
    outcome = rejudge.rejudge(args.out, args.source)
    for student, what, old, new in outcome.changes:
        print(f"{student} {what}: {'none' if old is None else f'{old:g}'} → {'not graded' if new is None else f'{new:g}'}")
    if not outcome.changes:
        print("no grade changed")
    print(f"wrote results/, feedback/, {args.out / 'grades.csv'} and {args.out / 'summary.json'}")
    try:
        finals = manual.refinalize(args.out, args.source)
    except (ValueError, FileNotFoundError) as error:   # the sheets no longer pass: the automatic grades stand
        print(f"warning: grades.csv holds the automatic grades only: finalize failed: {error}", file=sys.stderr)
        finals = None
    if finals is not None:
        print(f"finalized again: {args.out / 'grades.csv'} has the hand-graded totals")
    for student, why in sorted(outcome.refused.items()):
        print(f"refused {student}: {why}", file=sys.stderr)
    return 1 if outcome.refused else 0


COMMANDS = {"manual": _manual, "finalize": _finalize, "rejudge": _rejudge}
