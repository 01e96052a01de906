"""Gradebook exports: ``python -m autograder export canvas|moodle|nbgrader|gradescope ...``.

Each LMS export starts from what the LMS itself gives the instructor (Canvas's gradebook export, Moodle's
grade export or participants list) and matches the grader's students to its rows: by the LMS's own login
(Canvas's SIS Login ID, Moodle's username or email; a grader name is a file name, so ``jdoe@uni.edu``
matches the submission ``jdoe_uni.edu.ipynb``), or by a ``--map`` CSV whose first two columns are the
grader's student name and the LMS login. **Every export is a dry run unless given ``--write``**: it prints
what it would do (matched, unmatched on either side, out of range, would overwrite) and writes nothing.

The score exported is the grade the instructor publishes (``published``): after ``finalize``, grades.csv's
``final`` (automatic + hand-graded points less the late penalty; ``total`` without a deadline); else the
signed automatic total, less the signed late penalty when grading had a deadline. While written answers
wait for hand grading, the dry run says so and ``--write`` is refused unless ``--automatic-only`` is given.
A result the grader failed on ("not graded") is never exported as a zero: its cell is left as it was.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import keys
from .. import late as late_work
from ..grade import _safe
from ..items import load
from ..manual import FINALIZED
from ..report import points, spreadsheet_safe
from ..result import Result

PENDING = ("written answers not graded yet: run manual + finalize, or pass --automatic-only to export "
           "automatic points")


def number(value: float) -> str:
    """A score as the LMSs read it: at most two decimals, no exponent, no trailing zeros."""
    text = f"{round(float(value), 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def read_map(path: Path | None) -> dict[str, str]:
    """``--map``: grader student name → LMS login, from a CSV's first two columns (a header row is skipped
    when its first cell is not a student of this class)."""
    if path is None:
        return {}
    mapping = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        for row in csv.reader(f):
            if len(row) >= 2 and row[0].strip() and row[1].strip():
                mapping[_safe(row[0].strip())] = row[1].strip()
    return mapping


def key_of(text: str) -> str:
    """How a login and a grader name are compared: as a grader file name, case-insensitively."""
    return _safe(text.strip()).casefold()


@dataclass
class Plan:
    """What an export would do; ``print`` shows it, and nothing is written without ``--write``."""

    target: str
    matched: list[tuple[str, str, str, str]] = field(default_factory=list)   # student, login, old, new
    unmatched_students: list[str] = field(default_factory=list)             # graded, no LMS row
    unmatched_rows: list[str] = field(default_factory=list)                 # LMS rows with no result
    not_graded: list[str] = field(default_factory=list)
    out_of_range: list[tuple[str, str, str]] = field(default_factory=list)  # student, score, allowed
    notes: list[str] = field(default_factory=list)
    pending: bool = False                                                   # written answers not graded yet

    @property
    def overwrites(self) -> list[tuple[str, str, str, str]]:
        return [m for m in self.matched if m[2].strip() and m[2].strip() != m[3]]

    def print(self, write: bool, file=sys.stdout) -> None:
        p = lambda *a: print(*a, file=file)   # noqa: E731
        p(f"{'WRITING' if write else 'DRY RUN (nothing written; add --write to write)'}: {self.target}")
        warning = [f"  !!! WARNING: {PENDING} !!!"] if self.pending else []
        for line in warning:
            p(line)
        p(f"  matched: {len(self.matched)}")
        for student, login, old, new in self.matched:
            change = f"{old!s} -> {new}" if old.strip() else new
            p(f"    {student} -> {login}: {change}")
        p(f"  unmatched students (graded, no row in the LMS file; add them to --map): {len(self.unmatched_students)}")
        for s in self.unmatched_students:
            p(f"    {s}")
        p(f"  LMS rows without a result (left as they are): {len(self.unmatched_rows)}")
        for s in self.unmatched_rows:
            p(f"    {s}")
        p(f"  not graded (grader failure; left as they are, never a zero): {len(self.not_graded)}")
        for s in self.not_graded:
            p(f"    {s}")
        p(f"  out of range: {len(self.out_of_range)}")
        for student, score, allowed in self.out_of_range:
            p(f"    {student}: {score} not in {allowed}")
        p(f"  would overwrite a different existing grade: {len(self.overwrites)}")
        for student, login, old, new in self.overwrites:
            p(f"    {student} ({login}): {old} -> {new}")
        for note in self.notes:
            p(f"  note: {note}")
        for line in warning:
            p(line)


@dataclass(frozen=True)
class Grade:
    """One student's exported grade: ``score`` (None: the cell is left as it was) out of ``maximum``, with
    ``manual`` hand-graded points in it (None: not finalized) and the late ``penalty`` taken."""

    score: float | None
    maximum: float
    manual: float | None = None
    penalty: float = 0.0


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _finalized_rows(out: Path, results: list[Result], late) -> dict[str, dict[str, str]]:
    """grades.csv's rows as finalize wrote them, refused unless they agree with the signed results."""
    path = out / "grades.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = {row.get("student"): row for row in csv.DictReader(f)}
    wanted = {"automatic", "manual", "total", "max"} | ({"penalty", "final"} if late else set())
    header = set(next(iter(rows.values()), {}))
    found = {}
    for r in results:
        row = rows.get(spreadsheet_safe(r.student))
        if (not wanted <= header or ("final" in header) != bool(late) or row is None
                or row["automatic"] != points(r.total if r.scored else None)):
            raise ValueError(f"{path} is not what finalize wrote from the signed results (at {r.student}): "
                             f"run python -m autograder finalize {out} again")
        found[r.student] = row
    return found


def published(out: Path, results: list[Result], automatic_only: bool = False
              ) -> tuple[dict[str, Grade], list[str], bool]:
    """Student → the grade to export, notes for the plan, and whether written answers are still to be graded
    by hand (see the module; ``automatic_only``: the automatic total, less the late penalty)."""
    out = Path(out)
    late = late_work.load(out, keys.read_key(out / ".grader" / "key"))
    finalized = (out / FINALIZED).exists() and not automatic_only
    rows = _finalized_rows(out, results, late) if finalized else {}
    grades = {}
    for r in results:
        if not r.scored:
            grades[r.student] = Grade(None, r.max_points)
            continue
        row = rows.get(r.student)
        total, manual, maximum = ((_number(row["total"]), _number(row["manual"]), _number(row["max"])) if row
                                  else (r.total, None, r.max_points))
        penalty, score = 0.0, total
        if late:
            taken, final = (row["penalty"], row["final"]) if row else late.cells(r.student, r.total)[2:]
            penalty, score = _number(taken) or 0.0, _number(final)
        grades[r.student] = Grade(score, maximum, manual, penalty)
    notes = [f"finalized grades of {out / 'grades.csv'}: automatic + hand-graded points"
             + (", less the late penalty" if late else "")] if finalized else []
    unknown = sorted(r.student for r in results if r.scored and grades[r.student].score is None)
    if unknown:
        notes.append(f"no final grade (lateness unknown or no total), left as they are: {', '.join(unknown)}")
    pending = not finalized and not automatic_only and any(r.manual_max for r in results)
    return grades, notes, pending


def proceed(plan: Plan, args) -> bool:
    """Print the plan; whether to write (never while written answers wait for hand grading)."""
    refused = args.write and plan.pending
    plan.print(args.write and not refused)
    if refused:
        print(f"error: nothing written: {PENDING}", file=sys.stderr)
    return args.write and not refused


def match(results: list[Result], logins: dict[str, str], mapping: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Student → the row key (a login from ``logins``: its compared form → itself) and the unmatched students.
    Two students claiming one row is an error."""
    found, unmatched, claimed = {}, [], {}
    for r in results:
        wanted = mapping.get(r.student, r.student)
        login = logins.get(key_of(wanted))
        if login is None:
            unmatched.append(r.student)
            continue
        if login in claimed:
            raise ValueError(f"{r.student} and {claimed[login]} both match the LMS row {login!r}: fix --map")
        claimed[login] = r.student
        found[r.student] = login
    return found, unmatched


def add_parsers(commands) -> None:
    from . import canvas, gradescope, moodle, nbgrader
    export = commands.add_parser("export", help="gradebook exports: canvas, moodle, nbgrader, gradescope")
    lms = export.add_subparsers(dest="lms", required=True)
    for module in (canvas, moodle, nbgrader, gradescope):
        module.add_parser(lms)


def run(args) -> int:
    from . import canvas, gradescope, moodle, nbgrader
    return {"canvas": canvas.run, "moodle": moodle.run, "nbgrader": nbgrader.run,
            "gradescope": gradescope.run}[args.lms](args)


def common_flags(parser, login: str) -> None:
    parser.add_argument("out", type=Path, help="a folder written by grade or merge")
    parser.add_argument("--map", type=Path, help=f"CSV: grader student name, {login} (first two columns)")
    parser.add_argument("--write", action="store_true", help="write the file (without it: a dry run)")
    parser.add_argument("--automatic-only", action="store_true", help="export the automatic points (less the late "
                        "penalty), ignoring hand grading; needed to --write before written answers are finalized")


def csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


__all__ = ["Grade", "Plan", "load", "match", "number", "proceed", "published", "read_map", "key_of"]
