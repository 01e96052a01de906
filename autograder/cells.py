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
- ``"setup"`` (optionally with ``"for": "probes"`` or ``"for": "judges"``, and nothing else): code that a
  question's probes and judges share (imports, a network both build, the reference's helpers), written
  once. It runs before each of the question's probes, in the same cell of the student's kernel, and
  before each of its judges, in the judge's own namespace in the grader; ``"for"`` keeps it to one
  side. Code that only judges may know (it imports ``book.models``, which the sandbox hides) takes
  ``"for": "judges"``: it never enters the sandbox. Never released; its code comes only from the
  instructor's notebook, so no submitted cell can replace it. At most one setup cell per question and
  ``"for"``; the setups of one side run in notebook order.
- ``"written"`` (with ``"points"``, and nothing else): a markdown cell the student writes prose in,
  graded by hand. The instructor's cell holds the model answer; release replaces all of it by
  ``WRITTEN_PLACEHOLDER``. Grading never runs it: the text is collected (capped) into the feedback and
  ``written/<student>.md``, and ``grades.csv`` lists the question as "manual", outside the automatic
  score. A written question has its own id and exactly one cell; no other kind may use that id.

What each kind is, for release, matching, injection, grading and the report, is one entry of ``KINDS``.
Every probe has exactly one judge of the same question and test name, and the other way round.
Cells without grader metadata (prose, the notebook's own setup code) pass through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat

RULES = ("own-model", "formula", "own-attention")
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
WRITTEN_PLACEHOLDER = "YOUR ANSWER HERE"

# How release writes a kind; the matching finds a released cell whose id is gone by the same token: a
# stubbed cell by the lines of its stub a student keeps, a placeholder by its position (the student
# replaced all of it), a cell released as it is by its exact text.
STUBBED, PLACEHOLDER, AS_IS = "stubbed", "placeholder", "as is"


@dataclass(frozen=True)
class Kind:
    """One kind of instructor cell, as every step of the grader treats it."""

    name: str
    cell_type: str                     # "code" or "markdown": a cell of the other type is refused
    released_as: str | None            # STUBBED, PLACEHOLDER, AS_IS, or None: never leaves the instructor's notebook
    runs_in_sandbox: bool              # its code runs in the student's kernel
    runs_trusted: bool                 # its code runs in the grader's own process, never in a sandbox
    carries_points: bool               # its metadata gives the question points
    graded_by_hand: bool = False       # those points are given by a person, outside the automatic score
    needs_test: bool = False           # names a "test": a probe and a judge pair by it
    keys: frozenset[str] | None = None  # the only metadata keys it takes (None: not checked)

    @property
    def shown_to_student(self) -> bool:
        return self.released_as is not None

    @property
    def students_own(self) -> bool:
        """The submitted cell holds the student's own text (editable in the release), not the instructor's."""
        return self.released_as in (STUBBED, PLACEHOLDER)

    @property
    def holds_solution(self) -> bool:
        """Its code holds the instructor's solution between the markers, and a student's answer in a submission."""
        return self.released_as == STUBBED


ANSWER, VISIBLE, PROBE, JUDGE, SETUP, WRITTEN = "answer", "visible", "probe", "judge", "setup", "written"
KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind(ANSWER, "code", STUBBED, runs_in_sandbox=True, runs_trusted=False, carries_points=False),
    Kind(VISIBLE, "code", AS_IS, runs_in_sandbox=True, runs_trusted=False, carries_points=False),
    Kind(PROBE, "code", None, runs_in_sandbox=True, runs_trusted=False, carries_points=False, needs_test=True),
    Kind(JUDGE, "code", None, runs_in_sandbox=False, runs_trusted=True, carries_points=True, needs_test=True),
    Kind(SETUP, "code", None, runs_in_sandbox=True, runs_trusted=True, carries_points=False,
         keys=frozenset({"id", "kind", "for"})),
    Kind(WRITTEN, "markdown", PLACEHOLDER, runs_in_sandbox=False, runs_trusted=False, carries_points=True,
         graded_by_hand=True, keys=frozenset({"id", "kind", "points"})),
)}
# A cell without grader metadata: prose, or code of the notebook's own, released as it is.
UNMARKED = Kind("", "any", AS_IS, runs_in_sandbox=True, runs_trusted=False, carries_points=False)
SETUP_SIDES = ("probes", "judges")   # the values of a setup cell's "for"; without it, both


def kind_of(name: str | None) -> Kind:
    """The ``Kind`` of a cell's ``"kind"``; a cell without one is ``UNMARKED``."""
    return KINDS[name] if name else UNMARKED


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
    probe: str              # the probe cell's code, for the student's kernel
    judge: str              # the judge cell's code, for the trusted grader
    probe_setup: str = ""   # the question's setup for its probes: runs first, in the probe's cell
    judge_setup: str = ""   # the question's setup for its judges: runs first, in the judge's namespace

    @property
    def key(self) -> str:
        return f"{self.question}.{self.name}"

    @property
    def sandbox_code(self) -> str:
        """The one cell that runs in the student's kernel for this test: its setup, then its probe."""
        return f"{self.probe_setup.rstrip()}\n\n{self.probe}" if self.probe_setup.strip() else self.probe

    @property
    def judge_code(self) -> str:
        """The judge as the grader reads it: the question's setup for judges, then the judge cell."""
        return f"{self.judge_setup.rstrip()}\n\n{self.judge}" if self.judge_setup.strip() else self.judge


@dataclass(frozen=True)
class Question:
    id: str
    tests: tuple[Test, ...]
    rule: str | None = None

    @property
    def points(self) -> float:
        return sum(t.points for t in self.tests)

    manual = KINDS[JUDGE].graded_by_hand   # graded automatically, by its judges


@dataclass(frozen=True)
class Written:
    """A prose answer graded by hand: its points never enter the automatic score."""

    id: str
    points: float

    manual = KINDS[WRITTEN].graded_by_hand


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
    parsed = _Layout(where)
    for number, cell in enumerate(source.cells):
        meta = info(cell)
        if meta:
            parsed.add(cell, meta, f"{where}, cell {number}")
    return parsed.questions()


@dataclass
class _Layout:
    """What the cells of one instructor notebook say, gathered cell by cell and checked as it goes."""

    where: str
    order: list[str] = field(default_factory=list)           # question ids, as they first appear
    writings: dict[str, float] = field(default_factory=dict)
    others: set[str] = field(default_factory=set)             # ids used by the code kinds
    rules: dict[str, str | None] = field(default_factory=dict)
    probes: dict[tuple[str, str], str] = field(default_factory=dict)
    judges: dict[tuple[str, str], dict] = field(default_factory=dict)
    setups: dict[tuple[str, str | None], tuple[str, str]] = field(default_factory=dict)  # (qid, for) → (source, where)

    def add(self, cell, meta: dict, here: str) -> None:
        name, qid = meta.get("kind"), meta.get("id")
        if name not in KINDS or not isinstance(qid, str) or not qid:
            raise FormatError(f"{here}: grader metadata needs an id and a kind in {tuple(KINDS)}: {meta}")
        kind = KINDS[name]
        if kind.keys is not None and set(meta) - kind.keys:
            unknown = sorted(set(meta) - kind.keys)
            raise FormatError(f"{here}: a {name} cell takes only {sorted(kind.keys)}, not {unknown}: {meta}")
        if cell.get("cell_type") != kind.cell_type:
            raise FormatError(f"{here}: a {name} cell must be a {kind.cell_type} cell, not {cell.get('cell_type')!r}")
        if name == WRITTEN:
            return self._written(meta, qid, here)
        if qid in self.writings:
            raise FormatError(f"{here}: {qid} is a written question; a {name} cell needs another id")
        self.others.add(qid)
        if name == SETUP:
            return self._setup(cell, meta, qid, here)
        if qid not in self.order:
            self.order.append(qid)
        if name == ANSWER:
            rule = meta.get("rule")
            if rule is not None and rule not in RULES:
                raise FormatError(f"{here}: unknown rule {rule!r}; known: {RULES}")
            self.rules[qid] = rule
        if kind.needs_test:
            self._test(cell, meta, kind, qid, here)

    def _written(self, meta: dict, qid: str, here: str) -> None:
        points = _positive_points(meta)
        if points is None:
            raise FormatError(f"{here}: a written answer needs positive points: {meta}")
        if qid in self.writings:
            raise FormatError(f"{here}: a second written cell for {qid} (one cell per written question)")
        if qid in self.others:
            raise FormatError(f"{here}: {qid} is a written question and also has code cells; give it its own id")
        if qid not in self.order:
            self.order.append(qid)
        self.writings[qid] = points

    def _setup(self, cell, meta: dict, qid: str, here: str) -> None:
        side = meta.get("for")
        if side is not None and side not in SETUP_SIDES:
            raise FormatError(f'{here}: a setup cell\'s "for" is one of {SETUP_SIDES} (or absent: both), not {side!r}')
        if (qid, side) in self.setups:
            raise FormatError(f"{here}: a second setup cell for {qid}{f' (for {side})' if side else ''}, after "
                              f"{self.setups[(qid, side)][1]}: merge them into one cell")
        self.setups[(qid, side)] = (cell.source, here)

    def _test(self, cell, meta: dict, kind: Kind, qid: str, here: str) -> None:
        name = meta.get("test")
        if not isinstance(name, str) or not name.isidentifier():
            raise FormatError(f"{here}: a {kind.name} needs a test name (an identifier): {meta}")
        table = self.probes if kind.name == PROBE else self.judges
        if (qid, name) in table:
            raise FormatError(f"{here}: a second {kind.name} for {qid}.{name}")
        if kind.name == PROBE:
            if f'"{qid}.{name}"' not in cell.source:
                raise FormatError(f'{here}: the probe must call inputs/export with the key "{qid}.{name}"')
            self.probes[(qid, name)] = cell.source
            return
        points = _positive_points(meta)
        if points is None:
            raise FormatError(f"{here}: a judge needs positive points: {meta}")
        if "def judge(" not in cell.source:
            raise FormatError(f"{here}: a judge cell must define judge(inputs, out)")
        self.judges[(qid, name)] = {"points": points, "source": cell.source,
                                    "message": str(meta.get("message", "A hidden test failed."))}

    def _setup_for(self, qid: str, side: str) -> str:
        """The question's setup code for one side: its setups for both sides and for this one, in notebook order."""
        return "\n\n".join(source.rstrip() for (q, s), (source, _) in self.setups.items()   # cells were added in order
                           if q == qid and s in (None, side))

    def questions(self) -> list[Question | Written]:
        unpaired = sorted(set(self.probes) ^ set(self.judges))
        if unpaired:
            raise FormatError(f"{self.where}: every probe needs a judge and every judge a probe; unpaired: "
                              + ", ".join(f"{q}.{n}" for q, n in unpaired))
        judged = {q for q, _ in self.judges}
        for (qid, _), (_, here) in self.setups.items():
            if qid not in judged:
                raise FormatError(f"{here}: a setup cell for {qid}, which has no probe or judge to share it; "
                                  f"give it the id of a question with hidden tests: {sorted(judged)}")
        result: list[Question | Written] = []
        for qid in self.order:
            if qid in self.writings:
                result.append(Written(qid, self.writings[qid]))
                continue
            probe_setup, judge_setup = self._setup_for(qid, "probes"), self._setup_for(qid, "judges")
            tests = tuple(Test(q, n, j["points"], j["message"], self.probes[(q, n)], j["source"], probe_setup, judge_setup)
                          for (q, n), j in self.judges.items() if q == qid)
            if not tests:
                raise FormatError(f"{self.where}: question {qid} has no judged test (it could never score)")
            result.append(Question(qid, tests, self.rules.get(qid)))
        return result
