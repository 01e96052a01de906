"""``export nbgrader OUT [--roster R] [--duedate ISO] [--assignment NAME] [--map M] [--write]``.

Writes ``OUT/nbgrader_grades.csv`` (``--to`` another file) with the columns of nbgrader's own
``nbgrader export``: assignment, duedate, timestamp, student_id, last_name, first_name, email, raw_score,
late_submission_penalty, score, max_score, one row per graded student, for a course that moves to (or
from) nbgrader. ``student_id`` is the grader's name, or ``--map``'s id for it; ``--roster`` (a CSV with
nbgrader's student table columns: id, last_name, first_name, email) fills the names. ``timestamp`` is the
submission time the grader used for late work (``submissions.csv`` when
``grade`` had ``--deadline``; kept, signed, in ``.grader/late.json``), else the submitted file's
modification time when it still exists. ``score`` is the exported grade (see
``exports.published``), ``late_submission_penalty`` the late penalty taken from ``raw_score``.
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path

from ..report import spreadsheet_safe
from .. import keys
from .. import late as late_work
from . import Grade, Plan, common_flags, csv_text, key_of, load, number, proceed, published, read_map

COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email", "raw_score",
           "late_submission_penalty", "score", "max_score"]


def _timestamp(path: str, submitted: datetime | None = None) -> str:
    """``submitted`` (the time late work was judged by) when known, else the file's modification time."""
    if submitted is None:
        try:
            submitted = datetime.fromtimestamp(Path(path).stat().st_mtime, timezone.utc)
        except OSError:
            return ""
    return submitted.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def plan_rows(results, grades: dict[str, Grade], assignment: str, duedate: str, roster: dict[str, dict],
              mapping: dict[str, str], submitted: dict[str, datetime] | None = None):
    plan = Plan(f"nbgrader grades of {assignment!r}")
    submitted = submitted or {}
    plan.not_graded = sorted(r.student for r in results if not r.scored)
    rows = [COLUMNS]
    for r in sorted((r for r in results if r.scored and grades[r.student].score is not None), key=lambda r: r.student):
        g = grades[r.student]
        student_id = mapping.get(r.student, r.student)
        person = roster.get(key_of(student_id), {})
        if roster and not person:
            plan.unmatched_students.append(r.student)
        if not 0 <= g.score <= g.maximum:
            plan.out_of_range.append((r.student, number(g.score), f"0..{g.maximum:g}"))
        plan.matched.append((r.student, student_id, "", number(g.score)))
        rows.append([spreadsheet_safe(v) for v in
                     [assignment, duedate, _timestamp(r.submission, submitted.get(r.student)), student_id, person.get("last_name", ""),
                      person.get("first_name", ""), person.get("email", ""), number(g.score + g.penalty),
                      number(g.penalty), number(g.score), number(g.maximum)]])
    ids = {key_of(mapping.get(r.student, r.student)) for r in results}
    plan.unmatched_rows = sorted(p.get("id", k) for k, p in roster.items() if k not in ids)
    return rows, plan


def add_parser(lms) -> None:
    parser = lms.add_parser("nbgrader", help="a CSV with nbgrader's export columns")
    common_flags(parser, "nbgrader student id")
    parser.add_argument("--roster", type=Path, help="CSV with id, last_name, first_name, email")
    parser.add_argument("--assignment", help="nbgrader's assignment name (default: the homework's name)")
    parser.add_argument("--duedate", default="", help="the due date, as nbgrader writes it (e.g. 2026-10-01 23:59:00)")
    parser.add_argument("--to", type=Path, help="where to write (default: OUT/nbgrader_grades.csv)")


def run(args) -> int:
    results = load(args.out)
    roster = {}
    if args.roster:
        with open(args.roster, newline="", encoding="utf-8-sig") as f:
            roster = {key_of(row["id"]): row for row in csv.DictReader(f) if row.get("id")}
    grades, notes, pending = published(args.out, results, args.automatic_only)
    late = late_work.load(args.out, keys.read_key(args.out / ".grader" / "key"))
    rows, plan = plan_rows(results, grades, args.assignment or results[0].homework, args.duedate, roster,
                           read_map(args.map), {s: t.at for s, t in late.submitted.items()} if late else {})
    target = args.to or args.out / "nbgrader_grades.csv"
    plan.notes += notes + ([f"{target} exists and would be overwritten"] if target.exists() else [])
    plan.target, plan.pending = f"{plan.target} -> {target}", pending
    if not proceed(plan, args):
        return 2 if args.write else 0
    target.write_text(csv_text(rows), encoding="utf-8", newline="")
    print(f"wrote {target}")
    return 0
