"""``export canvas OUT --gradebook canvas_export.csv --assignment "HW1 AlexNet (12345)" [--map M] [--write]``.

Fills one assignment column of the instructor's own Canvas gradebook export and writes the result as
``OUT/canvas_import.csv`` (``--to`` another file), ready for Canvas's Gradebook → Import. Canvas's export:
a header (``Student, ID, SIS User ID, SIS Login ID, [Integration ID,] Section, <assignment> (<id>), ...,
Current Score, ...``), then rows that are not students, whose ``Student`` cell is empty or says
``Points Possible`` (Canvas writes ``    Points Possible``, and a row saying ``Muted`` or ``Manual Posting``
under an assignment whose grades are posted by hand), then one row per student.

Nothing but the assignment's cells of the matched students changes, byte for byte: the file is split into
fields by their character spans (checked against Python's csv reader), and only those spans are replaced,
so quoting, the byte-order mark, line endings, names with commas, quotes, accents or a leading ``=`` and
every other column stay as Canvas wrote them. Students are matched by ``SIS Login ID`` or ``--map``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from . import Plan, common_flags, key_of, load, match, number, proceed, published, read_map

BOM = "\ufeff"
IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Section")
NOT_STUDENT = ("Points Possible", "Muted", "Manual Posting")


class CanvasFormatError(ValueError):
    pass


@dataclass
class Field:
    start: int
    end: int
    value: str


@dataclass
class Record:
    start: int
    end: int
    fields: list[Field]


def records(text: str) -> list[Record]:
    """The CSV records of ``text`` with each field's span (RFC 4180: quotes doubled inside quoted fields,
    newlines allowed there); refuses what Python's csv module would read differently."""
    out, i, n = [], 0, len(text)
    while i < n:
        start, fields = i, []
        while True:
            begin = i
            if i < n and text[i] == '"':
                i, parts = i + 1, []
                while True:
                    j = text.find('"', i)
                    if j < 0:
                        raise CanvasFormatError(f"an unclosed quote at character {begin}")
                    parts.append(text[i:j])
                    if text.startswith('""', j):
                        parts.append('"')
                        i = j + 2
                        continue
                    i = j + 1
                    break
                value = "".join(parts)
                if i < n and text[i] not in ",\r\n":
                    raise CanvasFormatError(f"text after a closing quote at character {i}")
            else:
                j = i
                while j < n and text[j] not in ",\r\n":
                    j += 1
                value, i = text[i:j], j
            fields.append(Field(begin, i, value))
            if i < n and text[i] == ",":
                i += 1
                continue
            break
        out.append(Record(start, i, fields))
        i += 2 if text.startswith("\r\n", i) else (1 if i < n else 0)
    parsed = [[f.value for f in r.fields] for r in out if r.fields != [Field(r.start, r.start, "")]]
    expected = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    if parsed != expected:
        raise CanvasFormatError("the file is not CSV as Canvas writes it (it reads differently as CSV)")
    return out


def is_student(record: Record) -> bool:
    """A student's row: not the Points Possible row, nor a muted / Manual Posting row (no Student name)."""
    name = record.fields[0].value.strip() if record.fields else ""
    return bool(name) and name not in NOT_STUDENT


def _column(header: list[str], assignment: str) -> int:
    if assignment in header:
        return header.index(assignment)
    by_id = [i for i, name in enumerate(header) if re.search(rf"\({re.escape(assignment)}\)\s*$", name)]
    if len(by_id) == 1:
        return by_id[0]
    known = [h for h in header if re.search(r"\(\d+\)\s*$", h)]
    raise CanvasFormatError(f"no column {assignment!r} in the gradebook; its assignments: {known}")


def fill(text: str, scores: dict[str, float | None], assignment: str, mapping: dict[str, str],
         max_points: float | None = None, results=()) -> tuple[str, Plan]:
    """``text`` (Canvas's export) with ``assignment``'s cells filled, and the plan. ``scores``: student →
    the grade to export (None or absent: left as it is)."""
    body = text[1:] if text.startswith(BOM) else text
    offset = len(text) - len(body)
    rows = records(body)
    if not rows:
        raise CanvasFormatError("the gradebook is empty")
    header = [f.value for f in rows[0].fields]
    for name in ("Student", "SIS Login ID"):
        if name not in header:
            raise CanvasFormatError(f"the gradebook has no {name!r} column: export it from Canvas's "
                                    f"Gradebook (Export → Export Entire Gradebook); its header: {header[:8]}")
    column, login_at = _column(header, assignment), header.index("SIS Login ID")
    plan = Plan(f"{assignment!r} of the Canvas gradebook")
    possible = None
    students: dict[str, Record] = {}
    no_login: list[str] = []
    for record in rows[1:]:
        if record.fields[0].value.strip() == "Points Possible" and column < len(record.fields):
            try:
                possible = float(record.fields[column].value)
            except ValueError:
                possible = None
        if not is_student(record):
            continue
        login = record.fields[login_at].value.strip() if login_at < len(record.fields) else ""
        if login:
            if key_of(login) in students:
                raise CanvasFormatError(f"two students of the gradebook have the SIS Login ID {login!r}")
            students[key_of(login)] = record
        else:
            no_login.append(f"{record.fields[0].value} (no SIS Login ID)")
    if possible is None:
        plan.notes.append("no Points Possible row gives this assignment's points: the range is not checked")
    elif max_points is not None and abs(possible - max_points) > 1e-9:
        plan.notes.append(f"Canvas gives {possible:g} points possible, the grader {max_points:g}: "
                          "scores are exported as graded, not rescaled")
    graded = [r for r in results if r.scored and scores.get(r.student) is not None]
    plan.not_graded = sorted(r.student for r in results if not r.scored)
    logins = {k: k for k in students}
    found, plan.unmatched_students = match(graded, logins, mapping)
    replaced = {}
    for student, key in sorted(found.items()):
        record = students[key]
        if column >= len(record.fields):
            raise CanvasFormatError(f"the row of {record.fields[0].value!r} is shorter than the header")
        old, new = record.fields[column].value, number(scores[student])
        login = record.fields[login_at].value
        plan.matched.append((student, login, old, new))
        if possible is not None and not 0 <= scores[student] <= possible:
            plan.out_of_range.append((student, new, f"0..{possible:g}"))
        replaced[record.fields[column].start] = (record.fields[column].end, new)
    matched = set(found.values())
    plan.unmatched_rows = [f"{r.fields[0].value} ({r.fields[login_at].value})" for k, r in students.items()
                           if k not in matched] + no_login
    pieces, at = [], 0
    for start in sorted(replaced):
        end, new = replaced[start]
        pieces += [body[at:start], new]
        at = end
    pieces.append(body[at:])
    return text[:offset] + "".join(pieces), plan


def add_parser(lms) -> None:
    parser = lms.add_parser("canvas", help="fill one assignment column of Canvas's own gradebook export")
    common_flags(parser, "SIS Login ID")
    parser.add_argument("--gradebook", type=Path, required=True, help="the CSV Canvas's Gradebook exported")
    parser.add_argument("--assignment", required=True, help='the column, as Canvas names it: "HW1 AlexNet (12345)"')
    parser.add_argument("--to", type=Path, help="where to write (default: OUT/canvas_import.csv)")


def run(args) -> int:
    results = load(args.out)
    data = args.gradebook.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CanvasFormatError(f"{args.gradebook} is not UTF-8, as Canvas writes it") from None
    grades, notes, pending = published(args.out, results, args.automatic_only)
    filled, plan = fill(text, {s: g.score for s, g in grades.items()}, args.assignment, read_map(args.map),
                        max((g.maximum for g in grades.values()), default=None), results)
    target = args.to or args.out / "canvas_import.csv"
    plan.target, plan.pending = f"{plan.target} -> {target}", pending
    plan.notes += notes
    if not proceed(plan, args):
        return 2 if args.write else 0
    target.write_bytes(filled.encode("utf-8"))
    print(f"wrote {target}: import it in Canvas (Grades → Import)")
    return 0
