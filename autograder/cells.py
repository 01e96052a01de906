"""The instructor notebook format: what each cell is, read from ``cell.metadata["grader"]``.

``{"grader": {"id": "q1", "kind": KIND, ...}}`` where KIND is one of

- ``"answer"``: the student's cell. Code between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` is the
  instructor's solution, replaced on release.
- ``"visible"``: a test the student sees and can run.
- ``"hidden"``: a test only the grader runs; it carries ``points`` and the ``message`` the student reads
  when it fails. The hidden test's code is never shown.

Cells without grader metadata (prose, setup code) pass through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import nbformat

KINDS = ("answer", "visible", "hidden")
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def info(cell) -> dict:
    """The grader metadata of a cell, or {}."""
    return dict(cell.get("metadata", {}).get("grader", {}))


@dataclass(frozen=True)
class HiddenTest:
    question: str
    index: int          # position among the question's hidden tests
    points: float
    message: str
    source: str

    @property
    def key(self) -> str:
        return f"{self.question}/hidden{self.index}"


@dataclass(frozen=True)
class Question:
    id: str
    hidden: tuple[HiddenTest, ...]

    @property
    def points(self) -> float:
        return sum(t.points for t in self.hidden)


def questions(source: nbformat.NotebookNode) -> list[Question]:
    """The questions of an instructor notebook, in order, each with its hidden tests."""
    order: list[str] = []
    hidden: dict[str, list[HiddenTest]] = {}
    for cell in source.cells:
        meta = info(cell)
        if not meta:
            continue
        if meta.get("kind") not in KINDS or not meta.get("id"):
            raise ValueError(f"grader metadata needs an id and a kind in {KINDS}: {meta}")
        qid = meta["id"]
        if qid not in order:
            order.append(qid)
        if meta["kind"] == "hidden":
            tests = hidden.setdefault(qid, [])
            tests.append(HiddenTest(qid, len(tests), float(meta.get("points", 1)),
                                    meta.get("message", "A hidden test failed."), cell.source))
    missing = [q for q in order if not hidden.get(q)]
    if missing:
        raise ValueError(f"questions without hidden tests (they could never score): {missing}")
    return [Question(q, tuple(hidden[q])) for q in order]
