"""``python -m autograder rejudge OUT [--source DIR]``: the current judges on the kept exports, no kernel.

Grading keeps what each probe exported (``stored.py``) and signs its hashes and the run's fingerprint into
each result. Rejudging applies a changed judge, points or message in seconds, and refuses, writing nothing:

- when anything in the fingerprint changed (a probe, the question's setup for probes, the inputs a judge
  gives its probe, the released notebook, an own-code rule, the names a solution defines): the exports
  would not be what the new probes would export, so a full ``grade`` is needed;
- when the instructor's own solution, judged on its kept exports (``.grader/self-check.json``), is no
  longer full marks: the new judges would give every student the grader's zero.

A student whose result or kept export does not verify (changed after grading) is refused alone, named,
and keeps the result it had; so does one graded by an earlier version (no exports kept). A grader failure
stays "not graded"; an unreadable submission stays 0 with the new points.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import cells, keys, report, stored
from . import late as late_work
from .grade import Assignment, empty_questions, find_source, make_judges
from .release import SOURCE_DIR
from .result import Failure, Result, read_folder


class RejudgeRefused(cells.FormatError):
    """Nothing was rejudged; the message says why and what to run instead."""


@dataclass
class Rejudged:
    results: list[Result]
    changes: list[tuple[str, str, float | None, float | None]] = field(default_factory=list)  # student, what, old, new
    refused: dict[str, str] = field(default_factory=dict)   # student → why it kept its old result


def judged(result: Result, assignment: Assignment, judges: dict, captured: dict) -> Result:
    """``result`` with its questions judged again on ``captured`` (the other facts of the run kept)."""
    questions = {}
    for question in assignment.questions:
        old = result.questions.get(question.id)
        broken = bool(old and old.rule_violations)
        points, passed, failed = 0.0, [], []
        for test in question.tests:
            verdict = judges[test.key].verdict(captured.get(test.key, {}))
            if verdict.passed and not broken:
                points += test.points
                passed.append(test.key)
            else:
                failed.append(Failure(test.key, test.points, test.message, verdict.detail))
        base = old if old is not None else empty_questions([question])[question.id]
        questions[question.id] = replace(base, points=points, max=question.points, passed=passed, failed=failed)
    return replace(result, questions=questions, total=sum(q.points for q in questions.values()))


def _with_assignment(result: Result, assignment: Assignment) -> Result:
    written = {qid: replace(w, max=next(q.points for q in assignment.written if q.id == qid))
               for qid, w in result.written.items()}
    return replace(result, source_sha256=assignment.digest, written=written, hmac=None,
                   max_points=sum(q.points for q in assignment.questions),
                   manual_max=sum(w.points for w in assignment.written))


def _self_check(out: Path, key: bytes, assignment: Assignment, judges: dict, now: dict) -> None:
    path = out / ".grader" / "self-check.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or not record.get("exports"):
        raise RejudgeRefused(f"{path} keeps no exports of your solution's run, so the new judges cannot be checked "
                             "on it first: run a full grade")
    body = {k: v for k, v in record.items() if k != "hmac"}
    if not keys.signed_by(body, record.get("hmac"), key):
        raise RejudgeRefused(f"{path} does not verify under the grader key (changed after grading): run a full grade")
    different = stored.changed(record.get("fingerprint"), now)
    if different:
        raise RejudgeRefused(f"your solution's kept run differs from the current notebook in: {', '.join(different)}; "
                             "run a full grade")
    try:
        captured = stored.load(record["exports"], out / stored.SELF_CHECK_EXPORTS)
    except stored.Tampered as error:
        raise RejudgeRefused(f"your solution's kept exports: {error}; run a full grade") from None
    failed = [f"{t.key}: {judges[t.key].verdict(captured.get(t.key, {})).detail}" for q in assignment.questions
              for t in q.tests if not judges[t.key].verdict(captured.get(t.key, {})).passed]
    if failed:
        raise RejudgeRefused("the current judges fail your own solution on its kept exports, so they would give "
                             f"students the grader's zeros; nothing was written. Failed: {'; '.join(failed)[:600]}")


def rejudge(out: Path, source_dir: Path = SOURCE_DIR) -> Rejudged:
    key, old, unusable = read_folder(out)
    if not old and not unusable:
        raise FileNotFoundError(f"{out / 'results'} holds no results: is {out} the --out folder of a grade?")
    refused = {path.stem: f"{error}; grade this student again" for path, error in unusable.items()}
    if not old:
        raise RejudgeRefused(f"no result in {out / 'results'} verifies: run a full grade")
    homework = {r.homework for r in old.values()}
    if len(homework) > 1:
        raise RejudgeRefused(f"{out} holds results of several homework sets: {sorted(homework)}")
    assignment = Assignment.read(find_source(homework.pop(), source_dir))
    judges = make_judges(assignment, key)
    now = stored.fingerprint(assignment.released_sha256, assignment.questions, judges, assignment.solution_names)
    different = sorted({name for r in old.values() if r.fingerprint is not None
                        for name in stored.changed(r.fingerprint, now)})
    if different:
        raise RejudgeRefused(f"changed since grading: {', '.join(different)}. The kept exports are not what these "
                             f"probes would export: run a full grade (python -m autograder grade {assignment.name} ...)")
    _self_check(out, key, assignment, judges, now)

    new: dict[str, Result] = {}
    for student, result in old.items():
        if result.fingerprint is None:
            refused[student] = "graded by an earlier version that kept no exports; grade this student again"
            new[student] = result
            continue
        base = _with_assignment(result, assignment)
        if not result.scored:
            new[student] = base                   # a grader failure: still not graded
        elif result.exports is None:              # no run (an unreadable submission): 0 of the new points
            new[student] = replace(base, questions=empty_questions(assignment.questions), total=0.0)
        else:
            try:
                captured = stored.load(result.exports, out / stored.EXPORTS_DIR / student)
            except stored.Tampered as error:
                refused[student] = f"{error}; it keeps its old result: grade this student again"
                new[student] = result
                continue
            new[student] = judged(base, assignment, judges, captured)
    changes = []
    for student in sorted(new):
        before, after = old[student], new[student]
        if after is before:
            continue
        for qid, q in after.questions.items():
            was = before.questions.get(qid)
            if was is None or was.points != q.points:
                changes.append((student, qid, None if was is None else was.points, q.points))
        if before.total != after.total:
            changes.append((student, "total", before.total, after.total))
    signed = {s: (r if r is old[s] else r.signed(key)) for s, r in new.items()}
    for result in signed.values():
        if result is not old[result.student]:
            report.write_student(result, out)
    ordered = [signed[s] for s in sorted(signed)]
    report.write_summary(ordered, assignment.columns, out, late=late_work.load(out, key))
    _update_manifest(out, assignment)
    return Rejudged(ordered, changes, refused)


def _update_manifest(out: Path, assignment: Assignment) -> None:
    """A shard folder's ``shard.json`` names the instructor notebook its results were judged by."""
    path = out / "shard.json"
    if path.exists():
        manifest = json.loads(path.read_text())
        manifest["source_sha256"] = assignment.digest
        manifest["questions"] = [[q.id, q.points, "manual"] if q.manual else [q.id, q.points] for q in assignment.columns]
        path.write_text(json.dumps(manifest, indent=2))
