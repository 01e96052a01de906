"""Put the hidden tests into a submission, matched to questions by id, never by cell position."""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat

from . import cells

# Runs first in every graded notebook: a student's print loop cannot flood the grader's memory.
OUTPUT_CAP_CELL = '''\
import sys as _grader_sys

class _GraderCappedStream:
    """Pass writes through until LIMIT characters, then drop them (note it once)."""
    LIMIT = 1_000_000

    def __init__(self, stream):
        self._stream, self._written, self._noted = stream, 0, False

    def write(self, text):
        if self._written < self.LIMIT:
            self._written += len(text)
            return self._stream.write(text[: max(0, self.LIMIT - self._written + len(text))])
        if not self._noted:
            self._noted = True
            self._stream.write("\\n[grader: output beyond 1,000,000 characters dropped]\\n")
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)

_grader_sys.stdout = _GraderCappedStream(_grader_sys.stdout)
_grader_sys.stderr = _GraderCappedStream(_grader_sys.stderr)
'''


@dataclass
class Injected:
    notebook: nbformat.NotebookNode
    hidden_at: dict[int, cells.HiddenTest] = field(default_factory=dict)  # code-cell index → hidden test
    answer_at: dict[int, str] = field(default_factory=dict)               # code-cell index → question id
    missing_answers: list[str] = field(default_factory=list)


def inject(source: nbformat.NotebookNode, submission: nbformat.NotebookNode) -> Injected:
    """The submission with outputs cleared, the output cap first, and each question's hidden tests
    placed after the last submitted cell of that question (at the end if none is left)."""
    questions = cells.questions(source)
    submitted = [c for c in submission.cells if c.get("cell_type") in ("code", "markdown", "raw")]
    last_of: dict[str, int] = {}
    answers: set[str] = set()
    for i, cell in enumerate(submitted):
        meta = cells.info(cell)
        if meta.get("id"):
            last_of[meta["id"]] = i
            if meta.get("kind") == "answer":
                answers.add(meta["id"])

    after: dict[int, list[cells.HiddenTest]] = {}
    for question in questions:
        after.setdefault(last_of.get(question.id, len(submitted) - 1), []).extend(question.hidden)

    result = Injected(nbformat.v4.new_notebook(metadata=submission.get("metadata", {})))
    result.missing_answers = [q.id for q in questions if q.id not in answers]
    code_index = 0

    def append(cell) -> None:
        nonlocal code_index
        result.notebook.cells.append(cell)
        if cell.cell_type == "code":
            code_index += 1

    append(nbformat.v4.new_code_cell(OUTPUT_CAP_CELL, metadata={"grader": {"kind": "setup"}}))
    for position in range(-1, len(submitted)):
        if position >= 0:
            cell = submitted[position]
            if cell.cell_type == "code":
                clean = nbformat.v4.new_code_cell(cell.source, metadata={"grader": cells.info(cell)})
                meta = cells.info(cell)
                if meta.get("kind") == "answer":
                    result.answer_at[code_index] = meta["id"]
                append(clean)
            else:
                append(nbformat.v4.new_markdown_cell(cell.source))
        for test in after.get(position, []):
            result.hidden_at[code_index] = test
            append(nbformat.v4.new_code_cell(test.source, metadata={"grader": {"id": test.question, "kind": "hidden"}}))
    return result
