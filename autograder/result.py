"""One student's result: what grading found, the only thing report and merge read, signed and kept as JSON.

The JSON of ``results/<student>.json`` is written and read only here (``save``, ``read``). Reading
refuses, each with its own error: a file that is missing or not JSON (``Unreadable``), one whose HMAC does
not verify under the grader key (``Unverified``: it was changed after grading), one written by another
``RESULT_VERSION`` (``Stale``: graded again, never misread), and one that is not exactly a result of this
version (``Unreadable``: every key must be known and the file must be what ``to_json`` would write).
Optional fields are absent from the JSON when unset, as they always were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from . import keys

RESULT_VERSION = 4   # 4: cells matched by the released notebook; "graded" false on grader failure


class ResultError(ValueError):
    """A results file that cannot be trusted as it is; the message says why."""


class Unreadable(ResultError):
    pass


class Unverified(ResultError):
    pass


class Stale(ResultError):
    pass


@dataclass
class Failure:
    """A judged test the submission failed."""

    test: str        # "q1.shape"
    points: float    # what it was worth
    message: str     # the instructor's message: the only part the student sees
    detail: str      # what the judge found, for the instructor only (it may quote the inputs)


@dataclass
class QuestionScore:
    points: float
    max: float
    passed: list[str] = field(default_factory=list)          # test keys
    failed: list[Failure] = field(default_factory=list)
    rule_violations: list[str] | None = None                  # the own-code rule broken (no points)
    answer_error: str | None = None                           # the last line of the answer cell's error
    seconds: float | None = None                              # its answer and probe cells' run time


@dataclass
class WrittenAnswer:
    """A written question's text as collected for grading by hand (capped, made inert)."""

    max: float
    missing: bool      # no cell of the submission is this question's
    blank: bool        # empty, or still the placeholder
    chars: int         # the full length
    kept: int          # the characters kept
    truncated: bool
    text: str


@dataclass
class Result:
    student: str
    submission: str
    homework: str
    sha256: str                  # of the submitted file ("" for the self-check)
    source_sha256: str           # of the instructor notebook
    max_points: float            # automatic points only
    manual_max: float            # what grading by hand can add
    status: str                  # "ok", or what went wrong
    total: float | None          # None: not graded (the grader failed on it)
    questions: dict[str, QuestionScore]
    written: dict[str, WrittenAnswer]
    graded: bool = True
    version: int = RESULT_VERSION
    seconds: float | None = None       # the run's wall-clock time
    output_tail: str | None = None     # the end of a troubled run's output, for the instructor
    first_failure: str | None = None   # why the first run failed, when the grader failed twice
    fingerprint: dict[str, str] | None = None       # what the run depended on (grade.run_fingerprint): rejudge checks it
    exports: dict[str, dict[str, str]] | None = None  # test key → suffix → "sha256:…", "absent" or "refused: …"
    hmac: str | None = None

    @property
    def scored(self) -> bool:
        """Counts in totals, means and histograms: graded, with a total (a grader failure is not a zero)."""
        return self.graded is not False and self.total is not None

    def to_json(self) -> dict:
        """The JSON object of the results file."""
        data = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "questions":
                value = {qid: _question_json(q) for qid, q in value.items()}
            elif f.name == "written":
                value = {qid: _plain(w) for qid, w in value.items()}
            elif value is None and f.name in OPTIONAL:
                continue
            data[f.name] = value
        return data

    @classmethod
    def from_json(cls, data) -> "Result":
        """The result that ``to_json`` gave ``data``; refuses anything else (``Stale``, ``Unreadable``)."""
        if not isinstance(data, dict):
            raise Unreadable("not a JSON object")
        if data.get("version") != RESULT_VERSION:
            raise Stale(f"written by result version {data.get('version')!r}, not {RESULT_VERSION}")
        names = {f.name for f in fields(cls)}
        unknown, missing = sorted(set(data) - names), sorted(names - OPTIONAL - set(data))
        if unknown or missing:
            raise Unreadable(f"not a result: unknown keys {unknown}, missing keys {missing}")
        try:
            result = cls(**{**data,
                            "questions": {qid: _question(q) for qid, q in data["questions"].items()},
                            "written": {qid: WrittenAnswer(**w) for qid, w in data["written"].items()}})
        except (TypeError, AttributeError, KeyError) as error:
            raise Unreadable(f"not a result: {error}") from None
        if result.to_json() != data:
            raise Unreadable("not a result of this version (it reads back differently)")
        return result

    def signed(self, key: bytes) -> "Result":
        return replace(self, hmac=keys.signature(self._body(), key))

    def verifies(self, key: bytes) -> bool:
        return keys.signed_by(self._body(), self.hmac, key)

    def _body(self) -> dict:
        return {k: v for k, v in self.to_json().items() if k != "hmac"}

    def __getitem__(self, name: str):
        """A field as the JSON has it, for scripts written against the dict results of earlier versions
        (benchmarks/grade_throughput.py); the grader itself reads attributes."""
        return self.to_json()[name]


OPTIONAL = {"seconds", "output_tail", "first_failure", "fingerprint", "exports", "hmac"}
_QUESTION_OPTIONAL = {"rule_violations", "answer_error", "seconds"}


def _plain(item) -> dict:
    return {f.name: getattr(item, f.name) for f in fields(item)}


def _question_json(question: QuestionScore) -> dict:
    data = {k: v for k, v in _plain(question).items() if not (k in _QUESTION_OPTIONAL and v is None)}
    data["failed"] = [_plain(f) for f in question.failed]
    return data


def _question(data: dict) -> QuestionScore:
    return QuestionScore(**{**data, "failed": [Failure(**f) for f in data["failed"]]})


def save(result: Result, path: Path) -> None:
    """Write ``result`` to ``path`` through a ``.partial`` file: a reader never sees half of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(result.to_json(), indent=2, sort_keys=True))
    partial.replace(path)


def read(path: Path, key: bytes) -> Result:
    """The result in ``path``, if its signature verifies under ``key`` and it is of this version."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise Unreadable(f"missing or unreadable ({type(error).__name__})") from None
    if not isinstance(data, dict) or not keys.signed_by({k: v for k, v in data.items() if k != "hmac"},
                                                         data.get("hmac"), key):
        raise Unverified("does not verify under the grader key: it was changed after grading")
    return Result.from_json(data)


def read_folder(out: Path) -> tuple[bytes, dict[str, Result], dict[Path, ResultError]]:
    """The grader key of a graded folder, every result of ``out/results/`` that verifies under it (by student,
    in file order), and why each other results file cannot be used. What a refusal means is the caller's."""
    key = keys.read_key(out / ".grader" / "key")
    results, unusable = {}, {}
    for path in sorted((out / "results").glob("*.json")):
        try:
            result = read(path, key)
        except ResultError as error:
            unusable[path] = error
            continue
        results[result.student] = result
    return key, results, unusable
