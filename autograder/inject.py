"""Put the probes into a submission, matched to questions by id, never by cell position.

Only probes go in: the judges never leave the grader. A student can reorder, delete or add cells;
each question's probes follow the last submitted cell of that question (the end if none is left).
A written answer goes in as markdown whatever its cell type: prose is never run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat

from . import cells


@dataclass
class Injected:
    notebook: nbformat.NotebookNode
    probe_at: dict[int, cells.Test] = field(default_factory=dict)   # code-cell index → its test
    answer_at: dict[int, str] = field(default_factory=dict)         # code-cell index → question id
    missing_answers: list[str] = field(default_factory=list)


def inject(questions: list[cells.Question], submission: nbformat.NotebookNode) -> Injected:
    """The submission's cells with outputs dropped, and each question's probes after its last cell."""
    submitted = [c for c in submission.cells if c.get("cell_type") in ("code", "markdown", "raw")]
    last_of: dict[str, int] = {}
    answers: set[str] = set()
    for i, cell in enumerate(submitted):
        meta = cells.info(cell)
        if isinstance(meta.get("id"), str):
            last_of[meta["id"]] = i
            if meta.get("kind") == "answer":
                answers.add(meta["id"])

    after: dict[int, list[cells.Test]] = {}
    for question in questions:
        after.setdefault(last_of.get(question.id, len(submitted) - 1), []).extend(question.tests)

    result = Injected(nbformat.v4.new_notebook())
    result.missing_answers = [q.id for q in questions if q.id not in answers]
    code_index = 0
    for position in range(-1, len(submitted)):
        if position >= 0:
            cell = submitted[position]
            if cell.get("cell_type") == "code" and cells.info(cell).get("kind") != "written":
                meta = cells.info(cell)
                if meta.get("kind") == "answer" and isinstance(meta.get("id"), str):
                    result.answer_at[code_index] = meta["id"]
                result.notebook.cells.append(nbformat.v4.new_code_cell(str(cell.get("source", ""))))
                code_index += 1
            else:
                result.notebook.cells.append(nbformat.v4.new_markdown_cell(str(cell.get("source", ""))))
        for test in after.get(position, []):
            result.probe_at[code_index] = test
            result.notebook.cells.append(nbformat.v4.new_code_cell(test.probe))
            code_index += 1
    return result
