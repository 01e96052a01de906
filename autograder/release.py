"""Student notebooks from instructor sources: solutions stubbed, written answers blanked, probes, judges and
setup cells removed, outputs cleared. What happens to each kind of cell is its ``cells.Kind``."""

from __future__ import annotations

from pathlib import Path

import nbformat

from . import cells

SOURCE_DIR = Path(__file__).resolve().parent / "source"   # the examples; a course keeps its own (--source)
HOMEWORK_DIR = Path(__file__).resolve().parents[1] / "homework"


def strip_solutions(source: str, where: str = "this cell") -> str:
    """Replace every BEGIN/END SOLUTION region by the stub, keeping the BEGIN line's indentation.

    A line parser, like nbgrader's ``clearsolutions``: a marker is a line whose stripped text starts with
    it. A nested BEGIN, an END without BEGIN, or a BEGIN never closed is an error naming ``where``,
    never a leak of the solution.
    """
    out: list[str] = []
    inside_since: int | None = None
    for number, line in enumerate(source.splitlines(), start=1):
        text = line.strip()
        if text.startswith(cells.BEGIN):
            if inside_since is not None:
                raise cells.FormatError(f"{where}, line {number}: '{cells.BEGIN}' inside the solution opened "
                                        f"on line {inside_since} (nested markers)")
            inside_since = number
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + stub for stub in cells.STUB.splitlines()]
        elif text.startswith(cells.END):
            if inside_since is None:
                raise cells.FormatError(f"{where}, line {number}: '{cells.END}' without a '{cells.BEGIN}'")
            inside_since = None
        elif inside_since is None:
            out.append(line)
    if inside_since is not None:
        raise cells.FormatError(f"{where}, line {inside_since}: '{cells.BEGIN}' is never closed by '{cells.END}'")
    return "\n".join(out) + ("\n" if source.endswith("\n") and out else "")


def student_version(source: nbformat.NotebookNode, keep_solutions: bool = False,
                    where: str = "the instructor notebook") -> nbformat.NotebookNode:
    """The student notebook: the kinds not shown to students (probes, judges, setups) dropped, solutions
    stubbed, written answers replaced by ``cells.WRITTEN_PLACEHOLDER`` (the whole cell: it holds the model
    answer), outputs and counts cleared.

    ``keep_solutions=True`` gives the reference submission instead (solutions in place, markers kept),
    which the tests grade to check that it earns full marks.

    Cell ids are derived from positions, so releasing the same source twice gives the same bytes.
    """
    cells.layout(source, where)  # validate the metadata before writing anything
    student = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    for number, cell in enumerate(source.cells):
        meta = cells.info(cell)
        kind = cells.kind_of(meta.get("kind"))
        if not kind.shown_to_student:
            continue
        if cell.cell_type == "code":
            here = f"{where}, cell {number}"
            stripped = strip_solutions(cell.source, here)  # parses every code cell: bad markers fail anywhere
            if not kind.holds_solution and stripped != cell.source:
                raise cells.FormatError(f"{here}: solution markers outside an answer cell")
            text = stripped if kind.holds_solution and not keep_solutions else cell.source
            new = nbformat.v4.new_code_cell(text)
        elif kind.released_as == cells.PLACEHOLDER:
            new = nbformat.v4.new_markdown_cell(cell.source if keep_solutions else cells.WRITTEN_PLACEHOLDER)
        else:
            new = nbformat.v4.new_markdown_cell(cell.source)
        if meta:
            new.metadata["grader"] = {"id": meta["id"], "kind": meta["kind"]}
            new.metadata["editable"] = kind.students_own  # students may run, not change, the instructor's cells
        new["id"] = f"cell-{len(student.cells):03d}"
        student.cells.append(new)
    return student


def sources(source_dir: Path = SOURCE_DIR) -> list[Path]:
    found = sorted(Path(source_dir).glob("*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no instructor notebooks (*.ipynb) in {source_dir}")
    return found


def render(path: Path) -> str:
    """The released notebook of one source, as the exact text written to disk."""
    notebook = student_version(nbformat.read(path, as_version=4), where=str(path))
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def release(paths: list[Path] | None = None, out_dir: Path = HOMEWORK_DIR, source_dir: Path = SOURCE_DIR) -> list[Path]:
    """Write ``<out_dir>/<name>.ipynb`` for every source; returns the paths written.

    Every notebook is rendered before any is written: one bad source leaves ``out_dir`` untouched.
    """
    rendered = {path.name: render(path) for path in (paths or sources(source_dir))}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered.items():
        (out_dir / name).write_text(text)
        written.append(out_dir / name)
    return written


def stale(paths: list[Path] | None = None, out_dir: Path = HOMEWORK_DIR, source_dir: Path = SOURCE_DIR) -> list[str]:
    """Names of homework notebooks that differ from what ``release`` would write (or are missing)."""
    out = []
    for path in paths or sources(source_dir):
        target = out_dir / path.name
        if not target.exists() or target.read_text() != render(path):
            out.append(path.name)
    return out
