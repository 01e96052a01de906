"""The instructor notebook format: what each cell is, read from ``cell.metadata["grader"]``.

``{"grader": {"id": "q1", "kind": KIND, ...}}`` where KIND is one of

- ``"answer"``: the student's cell. Code between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` is the
  instructor's solution, replaced on release. ``"rule": "own-model"`` forbids ``book.models`` and
  ``torchvision.models``; ``"rule": "formula"`` forbids torch, torchvision and book; ``"rule": "own-attention"``
  is own-model without library attention (``nn.MultiheadAttention``, ``scaled_dot_product_attention``; see
  ``rules.py``).
- ``"visible"``: a test the student sees and can run.
- ``"probe"`` (with ``"test": NAME``): runs in the student's sandboxed kernel, after the question's cells.
  It calls the answer on the grader's inputs (``autograder.probe.inputs``) and exports plain data
  (``autograder.probe.export``). Never released.
- ``"judge"`` (with ``"test": NAME``, ``"points"`` and ``"message"``): runs in the trusted grader
  process, never in a sandbox. Its code defines ``inputs(rng)`` (optional) and ``judge(inputs, out)``;
  the points come from here. Never released, never shown.
- ``"written"`` (with ``"points"``, and nothing else): a markdown cell the student writes prose in,
  graded by hand. The instructor's cell holds the model answer; release replaces all of it by
  ``WRITTEN_PLACEHOLDER``. Grading never runs it: the text is collected (capped) into the feedback and
  ``written/<student>.md``, and ``grades.csv`` lists the question as "manual", outside the automatic
  score. A written question has its own id and exactly one cell; no other kind may use that id.

Every probe has exactly one judge of the same question and test name, and the other way round.
Cells without grader metadata (prose, setup code) pass through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import nbformat

KINDS = ("answer", "visible", "probe", "judge", "written")
RULES = ("own-model", "formula", "own-attention")
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
WRITTEN_PLACEHOLDER = "YOUR ANSWER HERE"
WRITTEN_KEYS = {"id", "kind", "points"}


class FormatError(ValueError):
    """An instructor notebook that cannot be graded safely; the message names the cell."""


def info(cell) -> dict:
    """The grader metadata of a cell, or {}."""
    meta = cell.get("metadata", {}).get("grader", {})
    return dict(meta) if isinstance(meta, dict) else {}


@dataclass(frozen=True)
class Test:
    question: str
    name: str
    points: float
    message: str
    probe: str      # code for the student's kernel
    judge: str      # code for the trusted grader

    @property
    def key(self) -> str:
        return f"{self.question}.{self.name}"


@dataclass(frozen=True)
class Question:
    id: str
    tests: tuple[Test, ...]
    rule: str | None = None

    @property
    def points(self) -> float:
        return sum(t.points for t in self.tests)

    manual = False  # graded automatically, by its judges


@dataclass(frozen=True)
class Written:
    """A prose answer graded by hand: its points never enter the automatic score."""

    id: str
    points: float

    manual = True


def _positive_points(meta: dict) -> float | None:
    points = meta.get("points")
    if not isinstance(points, (int, float)) or isinstance(points, bool) or not 0 < points < float("inf"):
        return None
    return float(points)


def questions(source: nbformat.NotebookNode, where: str = "the instructor notebook") -> list[Question]:
    """The automatically graded questions of an instructor notebook, in order, each with its tests."""
    return [q for q in layout(source, where) if isinstance(q, Question)]


def written(source: nbformat.NotebookNode, where: str = "the instructor notebook") -> list[Written]:
    """The questions graded by hand (``"kind": "written"``), in order."""
    return [q for q in layout(source, where) if isinstance(q, Written)]


def layout(source: nbformat.NotebookNode, where: str = "the instructor notebook") -> list[Question | Written]:
    """Every question of an instructor notebook in notebook order, judged and written; validates all."""
    order: list[str] = []
    writings: dict[str, float] = {}
    others: set[str] = set()   # ids used by the code kinds
    rules: dict[str, str | None] = {}
    probes: dict[tuple[str, str], str] = {}
    judges: dict[tuple[str, str], dict] = {}
    for number, cell in enumerate(source.cells):
        meta = info(cell)
        if not meta:
            continue
        here = f"{where}, cell {number}"
        kind, qid = meta.get("kind"), meta.get("id")
        if kind not in KINDS or not isinstance(qid, str) or not qid:
            raise FormatError(f"{here}: grader metadata needs an id and a kind in {KINDS}: {meta}")
        if qid not in order:
            order.append(qid)
        if kind == "written":
            unknown = sorted(set(meta) - WRITTEN_KEYS)
            if unknown:
                raise FormatError(f"{here}: a written answer takes only {sorted(WRITTEN_KEYS)}, not {unknown}: {meta}")
            if cell.get("cell_type") != "markdown":
                raise FormatError(f"{here}: a written answer must be a markdown cell, not {cell.get('cell_type')!r}")
            points = _positive_points(meta)
            if points is None:
                raise FormatError(f"{here}: a written answer needs positive points: {meta}")
            if qid in writings:
                raise FormatError(f"{here}: a second written cell for {qid} (one cell per written question)")
            if qid in others:
                raise FormatError(f"{here}: {qid} is a written question and also has code cells; give it its own id")
            writings[qid] = points
            continue
        if qid in writings:
            raise FormatError(f"{here}: {qid} is a written question; a {kind} cell needs another id")
        others.add(qid)
        if kind == "answer":
            rule = meta.get("rule")
            if rule is not None and rule not in RULES:
                raise FormatError(f"{here}: unknown rule {rule!r}; known: {RULES}")
            rules[qid] = rule
        if kind in ("probe", "judge"):
            name = meta.get("test")
            if not isinstance(name, str) or not name.isidentifier():
                raise FormatError(f"{here}: a {kind} needs a test name (an identifier): {meta}")
            table = probes if kind == "probe" else judges
            if (qid, name) in table:
                raise FormatError(f"{here}: a second {kind} for {qid}.{name}")
            if kind == "probe":
                if f'"{qid}.{name}"' not in cell.source:
                    raise FormatError(f'{here}: the probe must call inputs/export with the key "{qid}.{name}"')
                probes[(qid, name)] = cell.source
            else:
                points = _positive_points(meta)
                if points is None:
                    raise FormatError(f"{here}: a judge needs positive points: {meta}")
                if "def judge(" not in cell.source:
                    raise FormatError(f"{here}: a judge cell must define judge(inputs, out)")
                judges[(qid, name)] = {"points": points, "source": cell.source,
                                       "message": str(meta.get("message", "A hidden test failed."))}
    unpaired = sorted(set(probes) ^ set(judges))
    if unpaired:
        raise FormatError(f"{where}: every probe needs a judge and every judge a probe; unpaired: "
                          + ", ".join(f"{q}.{n}" for q, n in unpaired))
    result: list[Question | Written] = []
    for qid in order:
        if qid in writings:
            result.append(Written(qid, writings[qid]))
            continue
        tests = tuple(Test(q, n, j["points"], j["message"], probes[(q, n)], j["source"])
                      for (q, n), j in judges.items() if q == qid)
        if not tests:
            raise FormatError(f"{where}: question {qid} has no judged test (it could never score)")
        result.append(Question(qid, tests, rules.get(qid)))
    return result
