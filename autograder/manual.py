"""Hand grading: ``python -m autograder manual OUT`` writes the sheets, ``finalize OUT`` reads them back.

``manual`` writes, for each written question ``q`` (a ``"kind": "written"`` cell, with its points):

- ``OUT/manual/q.csv``: columns ``student, answer_file, points, comment``, one row per student, points
  and comment blank for the person grading. Run again (a late submission was graded), it adds rows for
  new students and keeps every row already there exactly as it is: nothing typed in is ever overwritten.
- ``OUT/manual/q.md``: the model answer (the instructor notebook's written cell, which release blanks),
  then every student's answer as collected, inert inside a fence.

``finalize`` checks every sheet before writing anything, and refuses, naming the file, the row and the fix:
an unknown or missing column, a row for an unknown student or for one student twice, a student without a
row, and points that are not a plain number from 0 to the question's points. Blank points are refused
too: counted as 0 they would be a zero the grader gave, not the student; ``--allow-blank`` counts them as
0 and says so in that student's status. Then it writes, each time from the signed results (so running it
again after a correction replaces, never adds):

- ``OUT/grades_automatic.csv``: the automatic grades as ``grade`` wrote them;
- ``OUT/grades.csv``: per question the points (automatic ones, and the hand ones for written questions),
  ``automatic``, ``automatic_max``, ``manual``, ``manual_max``, ``total`` = automatic + manual, ``max``;
  with a deadline, ``submitted_at, late_days, penalty, final``, the penalty taken from the total after
  hand grading; and ``status``;
- ``OUT/feedback/<student>.md``: the automatic feedback, then the hand-graded points and comments.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import cells, report
from . import late as late_work
from .grade import Assignment, find_source
from .release import SOURCE_DIR
from .result import Result, read_folder

MANUAL_DIR = "manual"
SHEET_COLUMNS = ("student", "answer_file", "points", "comment")
AUTOMATIC_CSV = "grades_automatic.csv"
FINALIZED = Path(MANUAL_DIR) / "finalized.json"   # how finalize last ran
_NUMBER = re.compile(r"\+?(\d+(\.\d*)?|\.\d+)")


class SheetError(cells.FormatError):
    """One or more sheets that cannot be finalized; the message lists every problem, each with its fix."""


@dataclass(frozen=True)
class Mark:
    points: float | None   # None: blank, allowed only with --allow-blank (then counted as 0)
    comment: str


# --------------------------------------------------------------------------- reading OUT

def load_results(out: Path) -> tuple[bytes, dict[str, Result]]:
    """The grader key and every signed result of ``out``; one that does not verify is refused, named."""
    key, results, unusable = read_folder(out)
    if not results and not unusable:
        raise FileNotFoundError(f"{out / 'results'} holds no results: is {out} the --out folder of a grade?")
    for path, error in unusable.items():   # the first, in file order
        raise cells.FormatError(f"{path}: {error}; grade that student again")
    homework = sorted({r.homework for r in results.values()})
    if len(homework) > 1:
        raise cells.FormatError(f"{out} holds results of several homework sets ({', '.join(homework)}); one per folder")
    return key, results


def assignment_of(results: dict[str, Result], source_dir: Path) -> Assignment:
    return Assignment.read(find_source(next(iter(results.values())).homework, source_dir))


def model_answers(path: Path) -> dict[str, str]:
    """Each written question's model answer: its cell's text in the instructor notebook."""
    source = nbformat.read(path, as_version=4)
    return {cells.info(c)["id"]: c.source for c in source.cells if cells.info(c).get("kind") == cells.WRITTEN}


# --------------------------------------------------------------------------- the sheets

def _rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-empty rows (with their spreadsheet row numbers) of a sheet."""
    text = path.read_text(encoding="utf-8-sig")
    records = list(csv.reader(io.StringIO(text, newline="")))
    if not records:
        return [], []
    rows = [(number, row) for number, row in enumerate(records[1:], start=2) if any(cell.strip() for cell in row)]
    return [name.strip() for name in records[0]], rows


def _header_problem(path: Path, header: list[str]) -> str:
    unknown = [name for name in header if name not in SHEET_COLUMNS]
    missing = [name for name in SHEET_COLUMNS if name not in header]
    if unknown or missing or len(set(header)) != len(header):
        return (f"{path}, row 1: the columns must be exactly {', '.join(SHEET_COLUMNS)} (unknown: {unknown or 'none'}, "
                f"missing: {missing or 'none'}); rename or delete columns, or delete the file and run manual again")
    return ""


def sheet_text(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SHEET_COLUMNS)
    for row in rows:
        writer.writerow([row.get(name, "") for name in SHEET_COLUMNS])
    return buffer.getvalue()


def merged_sheet(path: Path, students: list[str], qid: str) -> tuple[str, list[str]]:
    """The sheet's text: every row already in ``path`` as it is, then a blank row for each new student.
    Returns the text and the students added. A sheet whose columns are not ``SHEET_COLUMNS`` is refused
    (never rewritten: it may hold points)."""
    existing: list[dict[str, str]] = []
    if path.exists():
        header, rows = _rows(path)
        problem = _header_problem(path, header)
        if problem:
            raise SheetError(problem)
        for number, row in rows:
            if len(row) != len(header):
                raise SheetError(f"{path}, row {number}: {len(row)} cells, the header has {len(header)}; "
                                 "quote a comment that holds a comma")
            existing.append({name: cell for name, cell in zip(header, row)})
    known = {row["student"].strip() for row in existing}
    added = [s for s in students if s not in known]
    existing += [{"student": s, "answer_file": f"written/{s}.md", "points": "", "comment": ""} for s in added]
    return sheet_text(existing), added


def answers_page(qid: str, points: float, homework: str, model: str, results: dict[str, Result]) -> str:
    """``manual/<qid>.md``: the model answer, then every student's answer, inert."""
    lines = [f"# {qid}: grading by hand, {homework} ({points:g} points)", "",
             f"Give each student 0 to {points:g} points, and a comment if you like, in `manual/{qid}.csv`; "
             "then run `python -m autograder finalize OUT`.", "", "## Model answer", "", model.strip(), ""]
    for student, result in sorted(results.items()):
        entry = result.written.get(qid)
        lines.append(f"## {student}")
        if entry is None or entry.missing:
            lines.append("- No answer: the written-answer cell is missing from the notebook.")
        elif entry.blank:
            lines.append("- No answer: the cell is blank or still says the placeholder.")
        else:
            lines += [f"{entry.chars} characters:", "", *report.quoted(entry.text)]
            if entry.truncated:
                lines.append(f"- Only the first {entry.kept} of {entry.chars} characters were kept.")
        lines.append("")
    return "\n".join(lines)


def write_sheets(out: Path, source_dir: Path = SOURCE_DIR) -> dict[str, list[str]]:
    """Write ``manual/<q>.csv`` and ``manual/<q>.md`` for every written question; question → students added."""
    _, results = load_results(out)
    assignment = assignment_of(results, source_dir)
    if not assignment.written:
        raise cells.FormatError(f"{assignment.name} has no written question: nothing to grade by hand")
    models = model_answers(find_source(assignment.name, source_dir))
    folder = out / MANUAL_DIR
    texts, added = {}, {}
    for question in assignment.written:   # every sheet is read before any is written
        texts[question.id], added[question.id] = merged_sheet(folder / f"{question.id}.csv", sorted(results), question.id)
    folder.mkdir(exist_ok=True)
    for question in assignment.written:
        _write(folder / f"{question.id}.csv", texts[question.id])
        _write(folder / f"{question.id}.md",
               answers_page(question.id, question.points, assignment.name, models.get(question.id, ""), results))
    return added


def _write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def parse_points(text: str, maximum: float) -> float:
    """A plain number from 0 to ``maximum`` (a dot for decimals); ValueError says what to write instead."""
    value = text.strip()
    if not _NUMBER.fullmatch(value):
        hint = " (use a dot for decimals)" if re.fullmatch(r"\d+,\d+", value) else ""
        raise ValueError(f"points {text!r} are not a number{hint}; write a number from 0 to {maximum:g}")
    number = float(value)
    if number > maximum:
        raise ValueError(f"points {value} are above this question's {maximum:g}; write a number from 0 to {maximum:g}")
    return number


def read_sheet(path: Path, maximum: float, students: set[str], allow_blank: bool = False
               ) -> tuple[dict[str, Mark], list[str]]:
    """The marks of one sheet, and every problem found (each naming the file, the row and the fix)."""
    if not path.exists():
        return {}, [f"{path} is missing; run: python -m autograder manual OUT"]
    try:
        header, rows = _rows(path)
    except UnicodeDecodeError:
        return {}, [f"{path} is not UTF-8 text; save it from the spreadsheet as CSV UTF-8"]
    problem = _header_problem(path, header)
    if problem:
        return {}, [problem]
    marks: dict[str, Mark] = {}
    first: dict[str, int] = {}
    problems = []
    for number, row in rows:
        here = f"{path}, row {number}"
        if len(row) != len(header):
            problems.append(f"{here}: {len(row)} cells, the header has {len(header)}; quote a comment that holds a comma")
            continue
        entry = dict(zip(header, row))
        student = entry["student"].strip()
        if student not in students:
            problems.append(f"{here}: no student {student!r} was graded in this folder; correct the name or delete the row")
            continue
        if student in first:
            problems.append(f"{here}: {student} again (first on row {first[student]}); keep one row")
            continue
        first[student] = number
        if not entry["points"].strip():
            if not allow_blank:
                problems.append(f"{here}: no points for {student}; write a number from 0 to {maximum:g} "
                                "(or run finalize --allow-blank to count blank points as 0)")
                continue
            marks[student] = Mark(None, entry["comment"].strip())
            continue
        try:
            marks[student] = Mark(parse_points(entry["points"], maximum), entry["comment"].strip())
        except ValueError as error:
            problems.append(f"{here}: {error}")
    for student in sorted(students - set(first)):
        problems.append(f"{path}: no row for {student}; run python -m autograder manual OUT to add one")
    return marks, problems


def read_sheets(out: Path, written: list[cells.Written], students: set[str], allow_blank: bool = False
                ) -> dict[str, dict[str, Mark]]:
    """Every written question's marks; ``SheetError`` listing every problem of every sheet if any."""
    folder = out / MANUAL_DIR
    ids = {q.id for q in written}
    problems = [f"{path}: no written question {path.stem!r} in this homework (its written questions: "
                f"{', '.join(sorted(ids))}); delete or rename the file"
                for path in sorted(folder.glob("*.csv")) if path.stem not in ids]
    marks = {}
    for question in written:
        marks[question.id], found = read_sheet(folder / f"{question.id}.csv", question.points, students, allow_blank)
        problems += found
    if problems:
        raise SheetError(f"{len(problems)} problem(s) in the hand-grading sheets; nothing was written:\n  "
                         + "\n  ".join(problems))
    return marks


# --------------------------------------------------------------------------- finalize

@dataclass
class Final:
    student: str
    automatic: float | None
    manual: float
    blank: list[str]          # written questions left blank (counted as 0, with --allow-blank)

    @property
    def total(self) -> float | None:
        return None if self.automatic is None else round(self.automatic + self.manual, 6)


def final_of(result: Result, marks: dict[str, dict[str, Mark]]) -> Final:
    given = {qid: sheet[result.student] for qid, sheet in marks.items()}
    return Final(result.student, result.total if result.scored else None,
                 round(sum(m.points or 0.0 for m in given.values()), 6),
                 [qid for qid, m in given.items() if m.points is None])


def final_csv(results: list[Result], assignment: Assignment, marks: dict[str, dict[str, Mark]], late) -> str:
    columns = assignment.columns
    automatic_max = sum(q.points for q in assignment.questions)
    manual_max = sum(q.points for q in assignment.written)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["student", *(q.id for q in columns), "automatic", "automatic_max", "manual", "manual_max",
                     "total", "max", *report.late_columns_of(late), "status"])
    for result in results:
        final = final_of(result, marks)
        cells_ = []
        for q in columns:
            if q.manual:
                mark = marks[q.id][result.student]
                cells_.append("" if mark.points is None else f"{mark.points:g}")
            else:
                cells_.append(report.points(result.questions[q.id].points) if result.scored else "not graded")
        status = result.status + "".join(f"; {qid} not graded by hand (counted as 0)" for qid in final.blank)
        row = [result.student, *cells_, report.points(final.automatic), f"{automatic_max:g}", f"{final.manual:g}",
               f"{manual_max:g}", report.points(final.total), f"{automatic_max + manual_max:g}",
               *(late.cells(result.student, final.total) if late else []), status]
        writer.writerow([report.spreadsheet_safe(cell) for cell in row])
    return buffer.getvalue()


def final_feedback(result: Result, assignment: Assignment, marks: dict[str, dict[str, Mark]], late) -> str:
    """The automatic feedback, then a section with the points and comments given by hand (replaced, never
    added to, when finalize runs again: it is written from the result each time)."""
    lines = [report.feedback(result).rstrip("\n"), "", "## Graded by hand", ""]
    for question in assignment.written:
        mark = marks[question.id][result.student]
        shown = "not graded yet" if mark.points is None else f"{mark.points:g} / {question.points:g}"
        lines.append(f"### {question.id}: {shown}")
        if mark.comment:
            lines += ["", *("> " + line for line in mark.comment.splitlines())]
        lines.append("")
    final = final_of(result, marks)
    if final.total is not None:
        maximum = sum(q.points for q in assignment.questions) + sum(q.points for q in assignment.written)
        lines.append(f"**Total: {final.total:g} / {maximum:g}** ({final.automatic:g} automatic + {final.manual:g} by hand)")
        days = late.days(result.student) if late else None
        if days:
            taken = late_work.penalty(final.total, days, late.policy)
            lines.append(f"\n**Late by {days} day{'s' if days > 1 else ''}** (deadline {late.deadline.isoformat()}, "
                         f"policy {late.policy.text}): −{taken:g}, **final {round(final.total - taken, 6):g}**")
        lines.append("")
    return "\n".join(lines)


def finalize(out: Path, source_dir: Path = SOURCE_DIR, allow_blank: bool = False) -> list[Final]:
    """Check every sheet, then write grades.csv, grades_automatic.csv and the feedback (see the module)."""
    key, by_student = load_results(out)
    assignment = assignment_of(by_student, source_dir)
    stale = sorted(s for s, r in by_student.items() if r.source_sha256 != assignment.digest)
    if stale:
        raise cells.FormatError(f"the instructor notebook of {assignment.name} changed since {', '.join(stale[:5])} "
                                "were graded: run python -m autograder rejudge OUT (or grade) first")
    if not assignment.written:
        raise cells.FormatError(f"{assignment.name} has no written question: grades.csv is final as grade wrote it")
    marks = read_sheets(out, assignment.written, set(by_student), allow_blank)
    late = late_work.load(out, key)
    results = [by_student[s] for s in sorted(by_student)]
    report.write_grades_csv(results, assignment.columns, out / AUTOMATIC_CSV, late)
    _write(out / "grades.csv", final_csv(results, assignment, marks, late))
    for result in results:
        _write(out / "feedback" / f"{result.student}.md", final_feedback(result, assignment, marks, late))
    _write(out / FINALIZED, json.dumps({"allow_blank": allow_blank}))   # rejudge finalizes again alike
    return [final_of(r, marks) for r in results]


def refinalize(out: Path, source_dir: Path = SOURCE_DIR) -> list[Final] | None:
    """Finalize again as the last ``finalize`` did (after ``rejudge`` rewrote the automatic grades); None
    when the folder was never finalized."""
    try:
        allow_blank = json.loads((out / FINALIZED).read_text())["allow_blank"] is True
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return finalize(out, source_dir, allow_blank)
