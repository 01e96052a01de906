"""``export moodle OUT --roster moodle_export.csv [--item NAME] [--by email|username] [--map M] [--write]``.

Writes ``OUT/moodle_import.csv`` (``--to`` another file) for Moodle's Grades → Import → CSV file: one
identity column (``Email address`` or ``Username``), the grade item's column and a feedback column. In
the import form, map the identity column to the user field of the same name, ``--item``'s column to the
grade item and ``Feedback`` to its feedback. ``--roster`` is what Moodle gives: its grade export
(Grades → Export → Plain text file: ``First name, Last name, ID number, Institution, Department, Email
address, ...``) or a participants download with ``Username``. Students match by username when the roster
has that column (``--by`` to choose), else by email (a grader name ``jdoe_uni.edu`` matches
``jdoe@uni.edu``, and so does ``jdoe`` when it is that address's only local part), or by ``--map``.
A roster column named ``--item`` (Moodle's export names one ``Assignment: HW1 (Real)``) gives the grades
that would be overwritten.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..report import spreadsheet_safe
from . import Grade, Plan, common_flags, csv_text, key_of, load, match, number, proceed, published, read_map

COLUMNS = {"email": "Email address", "username": "Username"}


def feedback(result, grade: Grade) -> str:
    """One line for the student: the score and each question's points (details in their feedback file)."""
    parts = [f"{qid} {q.points:g}/{q.max:g}" for qid, q in result.questions.items()]
    text = f"Automatic score {number(result.total)} / {result.max_points:g} ({', '.join(parts)})"
    if grade.manual is not None:
        text += f" + {number(grade.manual)} / {result.manual_max:g} for written answers graded by hand"
    elif result.manual_max:
        text += f"; written answers ({result.manual_max:g} points) graded by hand"
    if grade.penalty:
        text += f" − {number(grade.penalty)} late penalty"
    return text if grade.score == result.total else f"{text} = {number(grade.score)} / {grade.maximum:g}"


def plan_rows(results, grades: dict[str, Grade], roster: list[dict[str, str]], item: str, by: str,
              mapping: dict[str, str]):
    column = COLUMNS[by]
    if not roster or column not in roster[0]:
        raise ValueError(f"the roster has no {column!r} column (its columns: {list(roster[0]) if roster else []}); "
                         f"export the grades or participants from Moodle with that field, or use --by")
    logins = {}
    for row in roster:
        login = (row.get(column) or "").strip()
        if login:
            logins[key_of(login)] = login
            if by == "email" and "@" in login:
                logins.setdefault(key_of(login.split("@")[0]), login)   # jdoe → jdoe@uni.edu
    existing_column = next((c for c in (roster[0] if roster else {}) if c.split(" (")[0].strip() in
                            (item, f"Assignment: {item}")), None)
    existing = {(row.get(column) or "").strip(): (row.get(existing_column) or "").strip()
                for row in roster} if existing_column else {}
    plan = Plan(f"Moodle grade item {item!r} by {column}")
    graded = [r for r in results if r.scored and grades[r.student].score is not None]
    plan.not_graded = sorted(r.student for r in results if not r.scored)
    found, plan.unmatched_students = match(graded, logins, mapping)
    rows = [[column, item, "Feedback"]]
    by_student = {r.student: r for r in graded}
    for student, login in sorted(found.items(), key=lambda kv: kv[1]):
        result, grade = by_student[student], grades[student]
        old = existing.get(login, "")
        old = "" if old in ("-", "") else old
        plan.matched.append((student, login, old, number(grade.score)))
        if not 0 <= grade.score <= grade.maximum:
            plan.out_of_range.append((student, number(grade.score), f"0..{grade.maximum:g}"))
        rows.append([login, number(grade.score), spreadsheet_safe(feedback(result, grade))])
    matched = set(found.values())
    plan.unmatched_rows = sorted({v for v in logins.values() if v not in matched})
    return rows, plan


def add_parser(lms) -> None:
    parser = lms.add_parser("moodle", help="a CSV for Moodle's grade import (identity, grade, feedback)")
    common_flags(parser, "Moodle username or email")
    parser.add_argument("--roster", type=Path, required=True, help="Moodle's grade export or participants CSV")
    parser.add_argument("--item", help="the grade item's name (default: the homework's name)")
    parser.add_argument("--by", choices=sorted(COLUMNS), help="match on (default: username when the roster has it)")
    parser.add_argument("--to", type=Path, help="where to write (default: OUT/moodle_import.csv)")


def run(args) -> int:
    results = load(args.out)
    with open(args.roster, newline="", encoding="utf-8-sig") as f:
        roster = list(csv.DictReader(f))
    by = args.by or ("username" if roster and "Username" in roster[0] else "email")
    item = args.item or results[0].homework
    grades, notes, pending = published(args.out, results, args.automatic_only)
    rows, plan = plan_rows(results, grades, roster, item, by, read_map(args.map))
    target = args.to or args.out / "moodle_import.csv"
    plan.target, plan.pending = f"{plan.target} -> {target}", pending
    plan.notes += notes
    if not proceed(plan, args):
        return 2 if args.write else 0
    target.write_text(csv_text(rows), encoding="utf-8", newline="")
    print(f"wrote {target}: Moodle → Grades → Import → CSV file; map {rows[0][0]!r}, {item!r} and 'Feedback'")
    return 0
