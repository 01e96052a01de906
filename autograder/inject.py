"""Put the probes into a submission, placed by the released notebook's roles, never by cell position or
by the submission's own metadata.

Only probes go in, each in one cell with the question's setup for probes before it (``Test.sandbox_code``):
the judges and the setups for judges never leave the grader. A student can reorder, delete, add or relabel
cells; each question's probes follow the last submitted cell that the matching (``matching.py``) gives
to that question or that binds a name of its solution (the end if none is left). Every markdown or raw
cell goes in as markdown: prose is never run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat

from . import cells
from .matching import Matching, source_of


@dataclass
class Injected:
    notebook: nbformat.NotebookNode
    probe_at: dict[int, cells.Test] = field(default_factory=dict)   # code-cell index → its test
    answer_at: dict[int, str] = field(default_factory=dict)         # code-cell index → question id
    missing_answers: list[str] = field(default_factory=list)


def inject(questions: list[cells.Question], matching: Matching,
           solution_names: dict[str, set[str]] | None = None) -> Injected:
    """The submission's cells with outputs dropped, and each question's probes after its last cell: the last
    one matched to it, or the last of the student's cells that binds a name its solution defines (an
    answer typed into a new cell further down)."""
    submitted = matching.submitted
    after: dict[int, list[cells.Test]] = {}
    for question in questions:
        names = (solution_names or {}).get(question.id, set())
        mine = sorted(set(matching.of_question(question.id)) | set(matching.binding(names)))
        after.setdefault(mine[-1] if mine else len(submitted) - 1, []).extend(question.tests)

    result = Injected(nbformat.v4.new_notebook())
    result.missing_answers = [q.id for q in questions if not matching.answers(q.id)]
    code_index = 0
    for position in range(-1, len(submitted)):
        if position >= 0:
            cell, role = submitted[position], matching.roles[position]
            if cell.get("cell_type") == "code":
                if role is not None and cells.kind_of(role.kind).holds_solution:
                    result.answer_at[code_index] = role.question
                result.notebook.cells.append(nbformat.v4.new_code_cell(source_of(cell)))
                code_index += 1
            else:
                result.notebook.cells.append(nbformat.v4.new_markdown_cell(source_of(cell)))
        for test in after.get(position, []):
            result.probe_at[code_index] = test
            result.notebook.cells.append(nbformat.v4.new_code_cell(test.sandbox_code))
            code_index += 1
    return result
