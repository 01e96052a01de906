"""Student notebooks from instructor sources: solutions stubbed, hidden tests removed, outputs cleared."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from . import cells

SOURCE_DIR = Path(__file__).resolve().parent / "source"
HOMEWORK_DIR = Path(__file__).resolve().parents[1] / "homework"

_SOLUTION = re.compile(rf"^([ \t]*){re.escape(cells.BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(cells.END)}[^\n]*$",
                       re.MULTILINE | re.DOTALL)


def strip_solutions(source: str) -> str:
    """Replace every BEGIN/END SOLUTION region by the stub, keeping its indentation."""
    if cells.BEGIN in source and not _SOLUTION.search(source):
        raise ValueError(f"'{cells.BEGIN}' without a matching '{cells.END}' in:\n{source}")

    def stub(match: re.Match) -> str:
        indent = match.group(1)
        return "\n".join(indent + line for line in cells.STUB.splitlines())

    return _SOLUTION.sub(stub, source)


def student_version(source: nbformat.NotebookNode, keep_solutions: bool = False) -> nbformat.NotebookNode:
    """The student notebook: hidden tests dropped, solutions stubbed, outputs and counts cleared.

    ``keep_solutions=True`` gives the reference submission instead (solutions in place, markers kept),
    which the tests grade to check that it earns full marks.

    Cell ids are derived from positions, so releasing the same source twice gives the same bytes.
    """
    cells.questions(source)  # validate the metadata before writing anything
    student = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    for cell in source.cells:
        meta = cells.info(cell)
        if meta.get("kind") == "hidden":
            continue
        if cell.cell_type == "code":
            stub = meta.get("kind") == "answer" and not keep_solutions
            new = nbformat.v4.new_code_cell(strip_solutions(cell.source) if stub else cell.source)
        else:
            new = nbformat.v4.new_markdown_cell(cell.source)
        if meta:
            new.metadata["grader"] = {"id": meta["id"], "kind": meta["kind"]}
        if meta.get("kind") == "answer":
            new.metadata["editable"] = True
        elif meta.get("kind") == "visible":
            new.metadata["editable"] = False  # students may run, not change, the visible tests
        new["id"] = f"cell-{len(student.cells):03d}"
        student.cells.append(new)
    return student


def release(sources: list[Path] | None = None, out_dir: Path = HOMEWORK_DIR) -> list[Path]:
    """Write ``homework/<name>.ipynb`` for every source; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sources or sorted(SOURCE_DIR.glob("*.ipynb")):
        target = out_dir / path.name
        target.write_text(render(path))
        written.append(target)
    return written


def render(path: Path) -> str:
    """The released notebook of one source, as the exact text written to disk."""
    notebook = student_version(nbformat.read(path, as_version=4))
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def stale(sources: list[Path] | None = None, out_dir: Path = HOMEWORK_DIR) -> list[str]:
    """Names of homework notebooks that differ from what ``release`` would write (or are missing)."""
    out = []
    for path in sources or sorted(SOURCE_DIR.glob("*.ipynb")):
        target = out_dir / path.name
        if not target.exists() or target.read_text() != render(path):
            out.append(path.name)
    return out
