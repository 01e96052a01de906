"""Which submitted cell is which, decided by the released notebook and never by the submission's metadata.

A student's file carries the grader metadata it was released with, but nothing stops a student from
deleting, relabelling or forging it. So the grader takes every cell's role from the instructor source:

1. the released notebook (``release.student_version``) gives each cell an nbformat id and a role;
2. a submitted cell with a released cell's id, and of the same type, takes that cell's role;
3. a released cell whose id is gone is found by content, as its kind was released (``cells.Kind.released_as``):
   a cell released as it is (the notebook's own code, a visible test, prose) by its exact source, an
   answer (stubbed) by the lines of its released stub that a student keeps (the ``def`` line, the
   docstring), a written answer (a placeholder) as the markdown cell right after the released cell
   that precedes it;
4. everything else is the student's own code.

A released cell of the instructor's (not an answer) counts as the instructor's only while its source is
as released; edited, it is the student's. For the own-code rules (``code_for_rule``) a question's answer is its matched cell
plus every cell of the student's that binds a name the instructor's solution defines (``alexnet_28``,
``conv_output_size``), wherever it stands; and if no answer cell is found, all the student's code.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cached_property

import nbformat

from . import cells


@dataclass(frozen=True)
class Role:
    """One released cell: what the instructor's notebook says it is."""

    cell_id: str
    cell_type: str
    kind: str | None        # a kind shown to students ("answer", "visible", "written"), or None (no metadata)
    question: str | None
    source: str             # as released (an answer: its stub)


@dataclass
class Matching:
    """The submitted cells (in order) with the role each one plays, or None for the student's own cells."""

    submitted: list
    roles: list[Role | None] = field(default_factory=list)

    def positions(self, kind: str, question: str | None = None) -> list[int]:
        return [i for i, role in enumerate(self.roles)
                if role is not None and role.kind == kind and (question is None or role.question == question)]

    def answers(self, question: str) -> list[int]:
        return self.positions(cells.ANSWER, question)

    def of_question(self, question: str) -> list[int]:
        return [i for i, role in enumerate(self.roles) if role is not None and role.question == question]

    def instructors(self, position: int) -> bool:
        """A released non-answer cell, submitted exactly as released: the instructor's code, not the student's."""
        role = self.roles[position]
        return (role is not None and not cells.kind_of(role.kind).students_own
                and _same_text(source_of(self.submitted[position]), role.source))

    @cached_property
    def _students_code(self) -> list[int]:
        return [i for i, cell in enumerate(self.submitted)
                if cell.get("cell_type") == "code" and not self.instructors(i)]

    def students_code(self) -> list[int]:
        """Positions of every code cell the student wrote or changed (answers included)."""
        return list(self._students_code)

    @cached_property
    def _bound(self) -> dict[int, set[str]]:
        return {i: bound_names(source_of(self.submitted[i])) for i in self._students_code}

    def binding(self, names: set[str]) -> list[int]:
        """The student's code cells that bind any of ``names`` (parsed once per submission)."""
        return [i for i in self._students_code if self._bound[i] & names]


def source_of(cell) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(str(line) for line in source)
    return source if isinstance(source, str) else ""


def _same_text(a: str, b: str) -> bool:
    return a.strip().replace("\r\n", "\n") == b.strip().replace("\r\n", "\n")


def roles(released: nbformat.NotebookNode) -> list[Role]:
    found = []
    for cell in released.cells:
        meta = cells.info(cell)
        found.append(Role(str(cell.get("id")), cell.cell_type, meta.get("kind"), meta.get("id"), cell.source))
    return found


def _anchors(stub: str) -> list[str]:
    """The lines of a released answer stub a student keeps while answering: all but the stub itself."""
    placeholder = {line.strip() for line in cells.STUB.splitlines()}
    return [line.strip() for line in stub.splitlines() if line.strip() and line.strip() not in placeholder]


def match(released: list[Role], submission: nbformat.NotebookNode) -> Matching:
    """Give each submitted cell the role of the released cell it is (by id, then by content), or None."""
    submitted = [c for c in submission.cells if isinstance(c, dict) and c.get("cell_type") in ("code", "markdown", "raw")]
    result = Matching(submitted, [None] * len(submitted))
    by_id = {role.cell_id: role for role in released}
    found: set[str] = set()
    for position, cell in enumerate(submitted):
        role = by_id.get(cell.get("id")) if isinstance(cell.get("id"), str) else None
        if role is not None and role.cell_type == cell.get("cell_type"):
            result.roles[position] = role
            found.add(role.cell_id)
    free = [i for i, role in enumerate(result.roles) if role is None]
    for number, role in enumerate(released):
        if role.cell_id in found:
            continue
        released_as = cells.kind_of(role.kind).released_as
        if released_as == cells.PLACEHOLDER:   # its text is the student's own: found as the markdown cell right
            before = released[number - 1] if number else None   # after the released cell before it
            at = [i for i, r in enumerate(result.roles) if before is not None and r == before]
            position = at[-1] + 1 if at else -1
            if position in free and submitted[position].get("cell_type") == "markdown":
                result.roles[position] = role
                free.remove(position)
            continue
        if released_as == cells.STUBBED:
            anchors = _anchors(role.source)
            scored = [(sum(line in _lines(source_of(submitted[i])) for line in anchors), i)
                      for i in free if submitted[i].get("cell_type") == "code"]
            best = max(scored, default=(0, -1))
            if not anchors or best[0] == 0 or [s for s, _ in scored].count(best[0]) > 1:
                continue    # no line of the stub survives, or two cells tie: not found
            position = best[1]
        else:
            same = [i for i in free if submitted[i].get("cell_type") == role.cell_type
                    and _same_text(source_of(submitted[i]), role.source)]
            if not same:
                continue
            position = same[0]
        result.roles[position] = role
        free.remove(position)
    return result


def _lines(source: str) -> set[str]:
    return {line.strip() for line in source.splitlines()}


def bound_names(source: str, imports: bool = True) -> set[str]:
    """Every name a cell binds, at any depth: functions, classes, assignments, ``global``, and (with
    ``imports``) import aliases. A cell that does not parse binds nothing (it cannot run either)."""
    from .rules import _python

    tree = _python(source)
    if tree is None:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.Global):
            names.update(node.names)
        elif imports and isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def solution_names(source: nbformat.NotebookNode) -> dict[str, set[str]]:
    """Question id → the top-level names its instructor solution defines (not what it imports)."""
    names: dict[str, set[str]] = {}
    for cell in source.cells:
        meta = cells.info(cell)
        if cells.kind_of(meta.get("kind")).holds_solution and cell.cell_type == "code":
            tree = ast.parse(cell.source)
            for statement in tree.body:
                if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.setdefault(meta["id"], set()).add(statement.name)
                elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
                    targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                    names.setdefault(meta["id"], set()).update(
                        n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def code_for_rule(matching: Matching, question: str, names: set[str], elsewhere: set[str] = frozenset()) -> list[int]:
    """The submitted cells a question's own-code rule is checked on.

    Its answer cells; every cell of the student's that binds one of the solution's ``names`` (a moved or
    duplicated answer); and, when no answer cell is found, all the student's code except what answers
    another question: a cell matched to another answer, or one that binds only names of other questions'
    solutions (``elsewhere``)."""
    own = matching.students_code()
    mine = set(matching.binding(names))
    chosen = set(matching.answers(question)) | mine
    if not matching.answers(question):
        others = {i for i in own if matching.roles[i] is not None and cells.kind_of(matching.roles[i].kind).holds_solution}
        others |= set(matching.binding(elsewhere)) - mine
        chosen |= set(own) - others
    return sorted(chosen)
