"""Grade many submissions: each in its own sandboxed run, judged outside it, resumable, tamper-proof.

Per student: load → match its cells to the released notebook (``matching.py``: the instructor source
decides what each cell is, never the submission's metadata) → own-code rules (AST, trusted side) →
inject probes → run in the sandbox (pytest + nbval, one fresh kernel) → judges read the exported data
(trusted side) → points → signed result. Written answers are only read as text, capped, and kept for
grading by hand.

The grader knows when it failed: before a batch it grades the instructor's own solution in the same
sandbox with the same limits and refuses the class if that is not full marks (``SelfCheckFailed``); a
run that fails for the grader's reasons (``RunResult.grader_failure``) is retried once, then recorded as
"grader failure, not graded", never as a zero, and graded again when the command is run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import nbformat

from . import cells, keys, matching, release, report, rules, stored
from . import late as late_work
from .defaults import CELL_TIMEOUT, WORKERS
from .inject import Injected, inject
from .judging import Judge, capture, open_regular
from .probe import EXPORTS
from .release import SOURCE_DIR
from .result import RESULT_VERSION, Failure, QuestionScore, Result, ResultError, WrittenAnswer, read
from .run import NOTEBOOK, RunResult, run_notebook, whole_run_limit
from .sandbox import Limits, Runner

SUBMISSION_CAP = 16 * 1024 * 1024   # bytes; a larger notebook is refused unread
WRITTEN_CAP = 20_000                # characters of one written answer that are kept
TEMP_PREFIX = "autograder-run-"
JUDGE_LOCK = threading.Lock()   # judges share torch's global state (dispatch modes): one at a time
RETRY_LOCK = threading.Lock()   # retries go one at a time: a machine that starved a run is less busy then
GRADER_FAILURE = "grader failure, not graded"
OUTPUT_TAIL = 2000              # characters of a failed run's output kept for the instructor
SELF_CHECK = "instructor-solution"


class Interrupted(Exception):
    pass


class SelfCheckFailed(RuntimeError):
    """The instructor's own solution did not score full marks here: the grader, not the class, is broken."""


def find_source(homework: str, source_dir: Path = SOURCE_DIR) -> Path:
    """``hw1_alexnet`` (or a path) → the instructor notebook in ``source_dir``."""
    path = Path(homework)
    if path.suffix == ".ipynb" and path.exists():
        return path
    candidate = Path(source_dir) / f"{path.stem}.ipynb"
    if not candidate.exists():
        known = ", ".join(p.stem for p in sorted(Path(source_dir).glob("*.ipynb"))) or "none"
        raise FileNotFoundError(f"no instructor notebook for {homework!r} in {source_dir}; known homework: {known}")
    return candidate


def collect(submissions: list[Path]) -> dict[str, Path]:
    """Student name → notebook. A folder contributes every .ipynb below it; the name is the file's stem.

    Names are made plain file names (``_safe``) and unique: two submissions never share a result file.
    A symbolic link or a file that is not regular stays in the list: ``invalid`` gives it a status and
    0 points, and nothing is read through it."""
    found: dict[str, Path] = {}
    for item in submissions:
        if not item.exists() and not item.is_symlink():
            raise FileNotFoundError(f"submission {item} does not exist")
        paths = sorted(item.rglob("*.ipynb")) if item.is_dir() and not item.is_symlink() else [item]
        for path in paths:
            if ".ipynb_checkpoints" in path.parts or path in found.values():
                continue
            name = _safe(path.stem)
            if name in found:
                name = _safe("_".join(path.with_suffix("").parts[-2:]))  # same stem in two folders: keep both
            base, number = name, 2
            while name in found:
                name, number = f"{base}_{number}", number + 1
            found[name] = path
    return dict(sorted(found.items()))


def invalid(path: Path) -> str:
    """Why ``path`` is not read at all (empty when it is a regular file): never follow a link or open a FIFO."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as error:
        return f"invalid submission: cannot be read ({error.strerror})"
    if stat.S_ISLNK(mode):
        return "invalid submission: a symbolic link (not read; hand in the notebook itself)"
    if not stat.S_ISREG(mode):
        return "invalid submission: not a regular file (not read)"
    return ""


def _safe(name: str) -> str:
    """A student name that is one plain file name (it names their work folder and result files): no path
    separator, no control character, no leading dot or dash."""
    return re.sub(r"[^\w.-]", "_", name).lstrip(".-") or "unnamed"


def file_sha256(path: Path) -> str:
    """Streamed: a huge submission is hashed without being held in memory."""
    try:
        with open_regular(path) as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return ""


def load(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """The submission as a notebook, or None and why it cannot be read."""
    problem = invalid(path)
    if problem:
        return None, problem
    try:
        with open_regular(path) as f:
            data = f.read(SUBMISSION_CAP + 1)
    except OSError as error:
        return None, f"invalid submission: cannot be read ({error})"
    if len(data) > SUBMISSION_CAP:
        return None, f"invalid notebook: larger than {SUBMISSION_CAP // 2**20} MiB"
    try:
        notebook = nbformat.reads(data.decode(), as_version=4)
    except Exception as error:  # invalid JSON, wrong schema, unreadable bytes
        return None, f"invalid notebook: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    if not isinstance(notebook.get("cells"), list):
        return None, "invalid notebook: no cells"
    return notebook, ""


# --------------------------------------------------------------------------- shards

def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` with 0 ≤ i < n (Slurm's array ids and Kubernetes' completion indexes start at 0)."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not int(match[1]) < int(match[2]):
        raise ValueError(f"--shard must be i/n with 0 <= i < n, like 0/4, not {text!r}")
    return int(match[1]), int(match[2])


def shard_of(students: dict[str, Path], index: int, count: int) -> dict[str, Path]:
    """The students whose name hashes to ``index`` modulo ``count``: the same split on every machine, and a
    student's shard does not move when others join the class."""
    def bucket(name: str) -> int:
        return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count
    return {name: path for name, path in students.items() if bucket(name) == index}


def class_fingerprint(students: dict[str, Path]) -> dict:
    """What every shard must agree on: the whole class's names (a late submission changes it)."""
    names = "\n".join(sorted(students))
    return {"students": len(students), "sha256": hashlib.sha256(names.encode()).hexdigest()}


# --------------------------------------------------------------------------- points

def empty_questions(questions: list[cells.Question]) -> dict[str, QuestionScore]:
    return {q.id: QuestionScore(0.0, q.points) for q in questions}


def score(questions: list[cells.Question], verdicts: dict, injected: Injected, run: RunResult,
          broken: dict) -> dict[str, QuestionScore]:
    """Points per question from the judges' verdicts; an own-code violation zeroes its question."""
    per_question = empty_questions(questions)
    for question in questions:
        entry = per_question[question.id]
        for test in question.tests:
            verdict = verdicts[test.key]
            if verdict.passed and question.id not in broken:
                entry.points += test.points
                entry.passed.append(test.key)
            else:   # the detail is for the instructor only
                entry.failed.append(Failure(test.key, test.points, test.message, verdict.detail))
        if question.id in broken:
            entry.rule_violations = broken[question.id]
    for index, qid in injected.answer_at.items():
        cell = run.cells.get(index)
        if cell is not None and not cell.passed and qid in per_question:
            per_question[qid].answer_error = cell.error or "the cell did not finish"
    cells_of = [(i, q) for i, q in injected.answer_at.items()] + [(i, t.question) for i, t in injected.probe_at.items()]
    for index, qid in cells_of:   # a question's time: its answer cells' and its probes' (for the item report)
        cell = run.cells.get(index)
        if cell is not None and qid in per_question:
            per_question[qid].seconds = round((per_question[qid].seconds or 0.0) + cell.seconds, 3)
    return per_question


# --------------------------------------------------------------------------- written answers

_INVISIBLE = {"Cc", "Cf", "Co", "Cs", "Zl", "Zp"}   # control, format (bidi overrides), private, surrogates


def _readable(text: str) -> str:
    """Hostile text made inert for display: newlines normalised, every control, format (bidi override,
    zero width) and surrogate character but tab and newline replaced by U+FFFD."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c if c in "\n\t" or unicodedata.category(c) not in _INVISIBLE else "\ufffd" for c in text)


def is_blank(text: str) -> bool:
    """Empty, or still the released placeholder (whitespace, emphasis and case aside)."""
    words = re.sub(r"[\s*_>#`]+", " ", text).strip().casefold()
    return words in ("", cells.WRITTEN_PLACEHOLDER.casefold())


def collect_written(written: list[cells.Written], notebook: nbformat.NotebookNode | None,
                    matched: matching.Matching | None = None) -> dict[str, WrittenAnswer]:
    """Each written question's text from the submission, read as a string and never run.

    The cells are those the matching gives the question (its released cell id); without one, a cell whose
    own metadata names it (harmless to trust: the text is only shown to the person grading by hand). A
    question whose cell was duplicated gets the cells joined. Kept: at most ``WRITTEN_CAP`` characters,
    made inert by ``_readable``; ``chars`` is the full length."""
    found: dict[str, list[str]] = {w.id: [] for w in written}
    if matched is not None:
        for question in written:
            for position in matched.positions(cells.WRITTEN, question.id):
                found[question.id].append(_capped_source(matched.submitted[position]))
    for cell in (notebook.cells if notebook is not None else []):
        meta = cells.info(cell)
        qid = meta.get("id")
        if meta.get("kind") == cells.WRITTEN and isinstance(qid, str) and qid in found and (
                matched is None or not matched.positions(cells.WRITTEN, qid)):
            found[qid].append(_capped_source(cell))
    collected = {}
    for question in written:
        parts = found[question.id]
        text = "\n\n".join(parts)
        kept = _readable(text[:WRITTEN_CAP])
        collected[question.id] = WrittenAnswer(max=question.points, missing=not parts, blank=is_blank(text),
                                               chars=len(text), kept=min(len(text), WRITTEN_CAP),
                                               truncated=len(text) > WRITTEN_CAP, text="" if is_blank(text) else kept)
    return collected


def _capped_source(cell) -> str:
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    if isinstance(source, list):
        source = "".join(str(line) for line in source[:WRITTEN_CAP])
    return source if isinstance(source, str) else ""


# --------------------------------------------------------------------------- the assignment

@dataclass
class Assignment:
    """What grading takes from the instructor source, once per batch: the questions, their points, and the
    released notebook whose cells decide what each submitted cell is."""

    name: str
    digest: str                               # sha256 of the instructor notebook's bytes
    columns: list                             # every question in notebook order (judged and written)
    released: list[matching.Role]
    solution_names: dict[str, set[str]]
    reference: nbformat.NotebookNode          # the instructor's solution as a submission: the self-check
    released_sha256: str = ""                 # of the released notebook's text (in the run's fingerprint)

    @property
    def questions(self) -> list[cells.Question]:
        return [q for q in self.columns if isinstance(q, cells.Question)]

    @property
    def written(self) -> list[cells.Written]:
        return [q for q in self.columns if isinstance(q, cells.Written)]

    @classmethod
    def read(cls, path: Path) -> "Assignment":
        data = path.read_bytes()
        source = nbformat.reads(data.decode(), as_version=4)
        columns = cells.layout(source, str(path))   # validates every cell first
        released = release.student_version(source, where=str(path))
        return cls(path.stem, hashlib.sha256(data).hexdigest(), columns, matching.roles(released),
                   matching.solution_names(source),
                   release.student_version(source, keep_solutions=True, where=str(path)),
                   hashlib.sha256(nbformat.writes(released).encode()).hexdigest())


def own_code_violations(assignment: Assignment, matched: matching.Matching) -> dict[str, list[str]]:
    """Question id → why the submission breaks its own-code rule, checked on the cells ``code_for_rule``
    gives it (its answer wherever it went, or all the student's code when no answer is found)."""
    every = [matching.source_of(c) for c in matched.submitted if c.get("cell_type") == "code"]
    names = assignment.solution_names
    broken = {}
    for question in assignment.questions:
        if question.rule is None:
            continue
        elsewhere = set().union(*(n for qid, n in names.items() if qid != question.id))
        chosen = matching.code_for_rule(matched, question.id, names.get(question.id, set()), elsewhere)
        problems = [problem for position in chosen
                    for problem in rules.violations(question.rule, matching.source_of(matched.submitted[position]), every)]
        if problems:
            broken[question.id] = list(dict.fromkeys(problems))
    return broken


# --------------------------------------------------------------------------- one student

@dataclass(frozen=True)
class GradingRun:
    """Everything that is the same for every student of one batch, built once by ``batch``."""

    assignment: Assignment
    judges: dict[str, Judge]     # test key → its judge, holding this run's inputs
    key: bytes                   # signs the results and seeded the judges' inputs
    work: Path                   # the batch's temporary folder: each student's run gets a folder in it
    runner: Runner               # the sandbox, its limits and the runs in progress
    cell_timeout: float
    out: Path                    # results/, feedback/, .grader/: never visible to a run
    fingerprint: dict | None = None   # what the exports depend on (stored.fingerprint), kept in each result


def make_judges(assignment: Assignment, key: bytes) -> dict[str, Judge]:
    """Every test's judge, its inputs drawn from a seed that only ``key`` gives."""
    return {t.key: Judge(t, keys.seed_for(key, t.key)) for q in assignment.questions for t in q.tests}


def _tail(run: RunResult) -> str:
    return run.outcome.output.decode(errors="replace")[-OUTPUT_TAIL:]


def _unscored(assignment: Assignment, student: str, path: Path, sha256: str, fingerprint: dict | None = None) -> Result:
    """A result with no points yet, every written answer missing: what an unreadable submission gets."""
    return Result(student=student, submission=str(path), homework=assignment.name, sha256=sha256,
                  source_sha256=assignment.digest, max_points=sum(q.points for q in assignment.questions),
                  fingerprint=fingerprint,
                  manual_max=sum(w.points for w in assignment.written), status="", total=0.0,
                  questions=empty_questions(assignment.questions), written=collect_written(assignment.written, None))


def _attempt(run: GradingRun, injected: Injected, work: Path, student: str) -> RunResult:
    """One run of the injected notebook in a fresh work folder, with this run's inputs beside it."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    nbformat.write(injected.notebook, work / NOTEBOOK)
    for judge in run.judges.values():
        judge.write_inputs(work)
    code_cells = sum(1 for c in injected.notebook.cells if c.cell_type == "code")
    result = run_notebook(run.runner, work, run.cell_timeout, whole_run_limit(run.cell_timeout, code_cells))
    if run.runner.closed:
        raise Interrupted(student)
    return result


def _run_with_retry(run: GradingRun, injected: Injected, work: Path, student: str) -> tuple[RunResult, str]:
    """The run, and why its first attempt failed for the grader's reasons ("" when it did not): such a run
    is the grader's failure, not the student's, so it is tried once more, alone, before anyone is told."""
    result = _attempt(run, injected, work, student)
    first_failure = result.grader_failure
    if first_failure:
        with RETRY_LOCK:
            result = _attempt(run, injected, work, student)
    return result, first_failure


def _status(run: RunResult, first_failure: str, injected: Injected, collected: dict[str, WrittenAnswer],
            broken: dict) -> str:
    notes = run.status
    if first_failure:
        notes.append(f"graded on a second run (the first: {first_failure})")
    if injected.missing_answers:
        notes.append("answer cell missing: " + ", ".join(injected.missing_answers))
    missing_written = [qid for qid, entry in collected.items() if entry.missing]
    if missing_written:
        notes.append("written answer cell missing: " + ", ".join(missing_written))
    if broken:
        notes.append("own-code rule broken: " + ", ".join(broken))
    return "; ".join(notes) or "ok"


def grade_one(run: GradingRun, student: str, path: Path, notebook: nbformat.NotebookNode | None = None,
              keep: Path | None = None) -> Result:
    """Every step for one student; never raises for a bad submission. ``notebook``: grade this instead of
    reading ``path`` (the self-check grades the instructor's solution). The exports are kept in ``keep``
    (default ``OUT/exports/<student>/``) and their hashes in the result, for ``rejudge``."""
    assignment = run.assignment
    unscored = _unscored(assignment, student, path, file_sha256(path) if notebook is None else "", run.fingerprint)
    if notebook is None:
        notebook, problem = load(path)
    if notebook is None:
        return replace(unscored, status=problem)
    matched = matching.match(assignment.released, notebook)
    collected = collect_written(assignment.written, notebook, matched)
    broken = own_code_violations(assignment, matched)
    injected = inject(assignment.questions, matched, assignment.solution_names)
    work = run.work / student
    outcome, first_failure = _run_with_retry(run, injected, work, student)
    seconds = round(outcome.outcome.seconds, 2)
    if outcome.grader_failure:
        return replace(unscored, graded=False, status=f"{GRADER_FAILURE}: {outcome.grader_failure}", total=None,
                       written=collected, first_failure=first_failure, output_tail=_tail(outcome), seconds=seconds)
    captured = {key: capture(work / EXPORTS, key) for key in run.judges}   # read once; kept for rejudge
    exports = stored.keep(captured, keep or run.out / stored.EXPORTS_DIR / student)
    with JUDGE_LOCK:
        verdicts = {key: judge.verdict(captured[key]) for key, judge in run.judges.items()}
    per_question = score(assignment.questions, verdicts, injected, outcome, broken)
    status = _status(outcome, first_failure, injected, collected, broken)
    return replace(unscored, status=status, questions=per_question, written=collected, seconds=seconds,
                   total=sum(q.points for q in per_question.values()), exports=exports,
                   output_tail=None if status == "ok" else _tail(outcome))   # the instructor's, never the feedback


def self_check(run: GradingRun) -> dict:
    """Grade the instructor's own solution as a student's, with the batch's sandbox and limits; raise
    ``SelfCheckFailed`` (naming what failed and the run's output) unless it earns every automatic point."""
    assignment, checking = run.assignment, replace(run, work=run.work / ".self-check")
    result = grade_one(checking, SELF_CHECK, Path(f"{assignment.name} (instructor solution)"),
                       notebook=nbformat.from_dict(assignment.reference), keep=run.out / stored.SELF_CHECK_EXPORTS)
    shutil.rmtree(checking.work, ignore_errors=True)
    record = {"homework": assignment.name, "source_sha256": assignment.digest, "cell_timeout": run.cell_timeout,
              "total": result.total, "max_points": result.max_points, "status": result.status,
              "failed": {qid: [asdict(f) for f in q.failed] for qid, q in result.questions.items() if q.failed},
              "output_tail": result.output_tail or ""}
    record["passed"] = result.status == "ok" and result.total == result.max_points
    record.update(fingerprint=result.fingerprint, exports=result.exports)   # rejudge judges these first
    record["hmac"] = keys.signature(record, run.key)
    (run.out / ".grader" / "self-check.json").write_text(json.dumps(record, indent=2))
    if not record["passed"]:
        failed = "; ".join(f"{f['test']}: {f['detail']}" for fs in record["failed"].values() for f in fs)[:600]
        tail = "\n    ".join(record["output_tail"].strip().splitlines()[-12:])
        raise SelfCheckFailed(
            f"the instructor's own solution of {assignment.name} scored {result.total} / {result.max_points} "
            f"in this sandbox ({result.status}), so the class was not graded: whatever fails here would be "
            f"every student's zero. Failed tests: {failed or 'none'}. The run's output ended:\n    {tail or '(nothing)'}\n"
            f"Fix the machine or the instructor notebook (details in {run.out / '.grader' / 'self-check.json'}), "
            "then run the same command again.")
    return record


# --------------------------------------------------------------------------- the batch

def sweep_stale(temp: Path | None = None) -> list[Path]:
    """Remove the work folders of grader processes that no longer exist (a ``kill -9`` leaves them)."""
    removed = []
    for folder in Path(temp or tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        try:
            pid = int(folder.name[len(TEMP_PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        except (ValueError, PermissionError):
            continue
    return removed


def already_graded(students: dict[str, Path], results_dir: Path, key: bytes, source_digest: str) -> dict[str, Result]:
    """The results of an earlier run that stand: signed with ``key``, of this result version, for the same
    submission bytes and instructor notebook, and graded (a grader failure is graded again)."""
    kept = {}
    for student, path in students.items():
        try:
            result = read(results_dir / f"{student}.json", key)
        except ResultError:
            continue
        if result.sha256 == file_sha256(path) and result.source_sha256 == source_digest and result.graded is True:
            kept[student] = result
    return kept


@contextmanager
def batch(assignment: Assignment, key: bytes, out: Path, runner: Runner, cell_timeout: float) -> Iterator[GradingRun]:
    """A ``GradingRun`` with its own temporary folder; on leaving (finished, failed, SIGTERM or SIGINT) every
    run still going is killed and the folder removed."""
    judges = make_judges(assignment, key)   # instructor code: a broken judge fails before anything starts
    sweep_stale()
    temp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))
    previous = _catch_signals()
    try:
        yield GradingRun(assignment, judges, key, temp, runner, cell_timeout, out,
                         stored.fingerprint(assignment.released_sha256, assignment.questions, judges,
                                            assignment.solution_names))
    finally:
        runner.close()                      # kills every run still going; refuses new ones
        shutil.rmtree(temp, ignore_errors=True)
        _restore_signals(previous)


def grade_all(run: GradingRun, todo: dict[str, Path], progress: bool = True) -> dict[str, Result]:
    """Grade ``todo`` on ``run.runner.workers`` threads; each signed result is written as soon as it is
    known, so that an interrupted batch resumes where it stopped."""
    from tqdm.auto import tqdm

    def one(item) -> Result:
        student, path = item
        result = grade_one(run, student, path).signed(run.key)
        report.write_student(result, run.out)
        return result

    results = {}
    pool = ThreadPoolExecutor(max_workers=max(1, run.runner.workers))
    try:
        bar = tqdm(total=len(todo), desc=f"grading {run.assignment.name}", unit="submission", disable=not progress)
        pending = {pool.submit(one, item) for item in todo.items()}
        while pending:  # short waits: the main thread must stay free to take SIGTERM and SIGINT
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                result = future.result()
                results[result.student] = result
                bar.update()
        bar.close()
    except BaseException:
        run.runner.close()   # kill the runs first: the threads below wait on them
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def grade(homework: str, submissions: list[Path], out: Path, workers: int = WORKERS, cell_timeout: float = CELL_TIMEOUT,
          progress: bool = True, source_dir: Path = SOURCE_DIR, sandbox: bool = True,
          limits: Limits | None = None, shard: tuple[int, int] | None = None,
          key_file: Path | None = None, check_first: bool = True, late: late_work.Late | None = None) -> list[Result]:
    """Grade every submission into ``out``; a finished, signed, unchanged result is not graded again.

    With ``check_first`` (the default) the instructor's solution is graded first with the same sandbox
    and limits, and the batch is refused (``SelfCheckFailed``) unless it earns full marks. A result that
    says "grader failure, not graded" is graded again on the next run. With ``shard=(i, n)`` only the
    i-th of n deterministic parts is graded, and ``out/shard.json`` records what ``merge`` needs; the
    shards must share ``key_file``. ``late`` (``late.for_class``): the deadline, the policy and the submission
    times, kept signed in ``OUT/.grader/late.json``; grades.csv gains its columns."""
    if shard is not None and key_file is None:
        raise cells.FormatError("--shard needs --key FILE, one key shared by every shard "
                                "(make it once: python -m autograder key grader.key)")
    assignment = Assignment.read(find_source(homework, source_dir))
    students = collect(submissions)
    whole_class = class_fingerprint(students)
    if shard is not None:
        students = shard_of(students, *shard)
    out.mkdir(parents=True, exist_ok=True)
    key = keys.grader_key(out, key_file)
    (out / "results").mkdir(parents=True, exist_ok=True)
    results = already_graded(students, out / "results", key, assignment.digest)
    todo = {s: p for s, p in students.items() if s not in results}
    with batch(assignment, key, out, Runner(limits or Limits(), sandbox=sandbox, workers=workers), cell_timeout) as run:
        if todo and check_first:
            self_check(run)
        results.update(grade_all(run, todo, progress))
    ordered = [results[s] for s in sorted(results)]
    if late is not None:
        late = late_work.Late(late.deadline, late.policy, {s: t for s, t in late.submitted.items() if s in results})
    late_work.save(late, out, key)
    report.write_summary(ordered, assignment.columns, out, late=late)
    if shard is not None:
        write_manifest(out, assignment, key, shard, sorted(results), whole_class)
    return ordered


def write_manifest(out: Path, assignment: Assignment, key: bytes, shard: tuple[int, int], students: list[str],
                   whole_class: dict) -> None:
    """``out/shard.json``: what ``merge`` checks every shard against."""
    manifest = {"homework": assignment.name, "source_sha256": assignment.digest, "key": keys.key_fingerprint(key),
                "shard": list(shard), "students": students, "class": whole_class, "version": RESULT_VERSION,
                "questions": [[q.id, q.points, "manual"] if q.manual else [q.id, q.points] for q in assignment.columns]}
    (out / "shard.json").write_text(json.dumps(manifest, indent=2))


def _raise_interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _catch_signals() -> dict:
    """SIGTERM and SIGINT unwind ``grade`` through its ``finally`` (kill the runs, remove the folders)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGTERM, signal.SIGINT)}


def _restore_signals(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
