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
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import tempfile
import stat
import threading
import unicodedata
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import cells, matching, release, report, rules
from .inject import inject
from .judging import Judge, open_regular
from .release import SOURCE_DIR
from .defaults import CELL_TIMEOUT, WORKERS
from .run import NOTEBOOK, RunResult, run_notebook, whole_run_limit
from .sandbox import Limits, Runner

RESULT_VERSION = 4                  # 4: cells matched by the released notebook; "graded" false on grader failure
SUBMISSION_CAP = 16 * 1024 * 1024   # bytes; a larger notebook is refused unread
WRITTEN_CAP = 20_000                # characters of one written answer that are kept
TEMP_PREFIX = "autograder-run-"
JUDGE_LOCK = threading.Lock()   # judges share torch's global state (dispatch modes): one at a time
RETRY_LOCK = threading.Lock()   # retries go one at a time: a machine that starved a run is less busy then
GRADER_FAILURE = "grader failure, not graded"
OUTPUT_TAIL = 2000              # characters of a failed run's output kept for the instructor


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


# --------------------------------------------------------------------------- the key and signed results

def _write_new_key(path: Path, key: bytes) -> None:
    """``key`` as hex in ``path``, created with mode 600 and never over an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())


def new_key_file(path: Path) -> None:
    """A fresh secret in ``path`` (mode 600), never overwriting one: ``python -m autograder key FILE``."""
    _write_new_key(path, secrets.token_bytes(32))


def read_key(path: Path) -> bytes:
    """A key of exactly 32 bytes (64 hex digits): anything shorter would make signatures forgeable."""
    try:
        key = bytes.fromhex(Path(path).read_text().strip())
    except FileNotFoundError:
        raise FileNotFoundError(f"no grader key at {path}; make one with: python -m autograder key {path}") from None
    except ValueError:
        key = b""
    if len(key) != 32:
        raise cells.FormatError(f"{path} is not a grader key (64 hex digits); make one with: "
                                "python -m autograder key NEWFILE")
    return key


def key_fingerprint(key: bytes) -> str:
    """Names a key without revealing it: shards graded with different keys cannot be merged."""
    return hashlib.sha256(b"autograder key fingerprint:" + key).hexdigest()[:16]


def grader_key(out: Path, key_file: Path | None = None) -> bytes:
    """The run's secret: signs results and seeds the probes' inputs. Kept in ``out``, which no sandbox sees.

    With ``key_file`` (shards on several machines share one), that key is used and copied into ``out``."""
    if key_file is not None:
        return store_key(out, read_key(key_file))
    path = out / ".grader" / "key"
    if not path.exists():
        store_key(out, secrets.token_bytes(32))
    return read_key(path)


def store_key(out: Path, key: bytes) -> bytes:
    """Keep ``key`` in ``out/.grader/key`` (mode 600); refuse a folder already graded with another."""
    folder = out / ".grader"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / "key"
    if path.exists():
        if read_key(path) != key:
            raise cells.FormatError(f"{out} was graded with another grader key: use a new --out folder")
        return key
    _write_new_key(path, key)
    return key


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


def seed_for(key: bytes, test: cells.Test) -> int:
    return int.from_bytes(hmac.new(key, f"inputs:{test.key}".encode(), hashlib.sha256).digest()[:8], "big")


def sign(result: dict, key: bytes) -> dict:
    body = json.dumps({k: v for k, v in result.items() if k != "hmac"}, sort_keys=True)
    return {**result, "hmac": hmac.new(key, body.encode(), hashlib.sha256).hexdigest()}


def verified(result: dict, key: bytes) -> bool:
    return isinstance(result, dict) and hmac.compare_digest(str(result.get("hmac", "")), sign(result, key)["hmac"])


# --------------------------------------------------------------------------- points

def empty_questions(questions: list[cells.Question]) -> dict:
    return {q.id: {"points": 0.0, "max": q.points, "passed": [], "failed": []} for q in questions}


def score(questions: list[cells.Question], verdicts: dict, injected, run: RunResult, broken: dict) -> dict:
    """Points per question from the judges' verdicts; an own-code violation zeroes its question."""
    per_question = empty_questions(questions)
    for question in questions:
        entry = per_question[question.id]
        for test in question.tests:
            verdict = verdicts[test.key]
            if verdict.passed and question.id not in broken:
                entry["points"] += test.points
                entry["passed"].append(test.key)
            else:
                entry["failed"].append({"test": test.key, "points": test.points, "message": test.message,
                                        "detail": verdict.detail})   # detail: instructor only
        if question.id in broken:
            entry["rule_violations"] = broken[question.id]
    for index, qid in injected.answer_at.items():
        cell = run.cells.get(index)
        if cell is not None and not cell.passed and qid in per_question:
            per_question[qid]["answer_error"] = cell.error or "the cell did not finish"
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
                    matched: matching.Matching | None = None) -> dict:
    """Each written question's text from the submission, read as a string and never run.

    The cells are those the matching gives the question (its released cell id); without one, a cell whose
    own metadata names it (harmless to trust: the text is only shown to the person grading by hand). A
    question whose cell was duplicated gets the cells joined. Kept: at most ``WRITTEN_CAP`` characters,
    made inert by ``_readable``; ``chars`` is the full length."""
    found: dict[str, list[str]] = {w.id: [] for w in written}
    if matched is not None:
        for question in written:
            for position in matched.positions("written", question.id):
                found[question.id].append(_capped_source(matched.submitted[position]))
    for cell in (notebook.cells if notebook is not None else []):
        meta = cells.info(cell)
        qid = meta.get("id")
        if meta.get("kind") == "written" and isinstance(qid, str) and qid in found and (
                matched is None or not matched.positions("written", qid)):
            found[qid].append(_capped_source(cell))
    collected = {}
    for question in written:
        parts = found[question.id]
        text = "\n\n".join(parts)
        kept = _readable(text[:WRITTEN_CAP])
        collected[question.id] = {"max": question.points, "missing": not parts, "blank": is_blank(text),
                                  "chars": len(text), "kept": min(len(text), WRITTEN_CAP),
                                  "truncated": len(text) > WRITTEN_CAP,
                                  "text": "" if is_blank(text) else kept}
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
        return cls(path.stem, hashlib.sha256(data).hexdigest(), columns,
                   matching.roles(release.student_version(source, where=str(path))),
                   matching.solution_names(source),
                   release.student_version(source, keep_solutions=True, where=str(path)))


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

def _tail(run: RunResult) -> str:
    return run.outcome.output.decode(errors="replace")[-OUTPUT_TAIL:]


def grade_one(assignment: Assignment, judges: dict[str, Judge], student: str, path: Path, work: Path,
              runner: Runner, cell_timeout: float, notebook: nbformat.NotebookNode | None = None) -> dict:
    """Every step for one student; never raises for a bad submission. ``notebook``: grade this instead of
    reading ``path`` (the self-check grades the instructor's solution)."""
    questions, written = assignment.questions, assignment.written
    base = {"student": student, "submission": str(path), "homework": assignment.name,
            "sha256": file_sha256(path) if notebook is None else "",
            "source_sha256": assignment.digest, "version": RESULT_VERSION, "graded": True,
            "max_points": sum(q.points for q in questions), "manual_max": sum(w.points for w in written)}
    if notebook is None:
        notebook, problem = load(path)
    if notebook is None:
        return {**base, "status": problem, "total": 0.0, "questions": empty_questions(questions),
                "written": collect_written(written, None)}
    matched = matching.match(assignment.released, notebook)
    collected = collect_written(written, notebook, matched)
    broken = own_code_violations(assignment, matched)
    injected = inject(questions, matched, assignment.solution_names)
    code_cells = sum(1 for c in injected.notebook.cells if c.cell_type == "code")
    total_timeout = whole_run_limit(cell_timeout, code_cells)

    def attempt() -> RunResult:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        nbformat.write(injected.notebook, work / NOTEBOOK)
        for judge in judges.values():
            judge.write_inputs(work)
        result = run_notebook(runner, work, cell_timeout, total_timeout=total_timeout)
        if runner.closed:
            raise Interrupted(student)
        return result

    run = attempt()
    failure = run.grader_failure
    if failure:   # the grader's failure, not the student's: once more, alone, before anyone is told
        with RETRY_LOCK:
            run = attempt()
        if run.grader_failure:
            return {**base, "graded": False, "status": f"{GRADER_FAILURE}: {run.grader_failure}",
                    "total": None, "questions": empty_questions(questions), "written": collected,
                    "first_failure": failure, "output_tail": _tail(run), "seconds": round(run.outcome.seconds, 2)}
    with JUDGE_LOCK:
        verdicts = {key: judge(work) for key, judge in judges.items()}
    per_question = score(questions, verdicts, injected, run, broken)
    notes = run.status
    if failure:
        notes.append(f"graded on a second run (the first: {failure})")
    if injected.missing_answers:
        notes.append("answer cell missing: " + ", ".join(injected.missing_answers))
    missing_written = [qid for qid, entry in collected.items() if entry["missing"]]
    if missing_written:
        notes.append("written answer cell missing: " + ", ".join(missing_written))
    if broken:
        notes.append("own-code rule broken: " + ", ".join(broken))
    result = {**base, "status": "; ".join(notes) or "ok", "questions": per_question, "written": collected,
              "total": sum(q["points"] for q in per_question.values()), "seconds": round(run.outcome.seconds, 2)}
    if result["status"] != "ok":
        result["output_tail"] = _tail(run)   # for the instructor's results file, never the feedback
    return result


def self_check(assignment: Assignment, judges: dict[str, Judge], work: Path, runner: Runner,
               cell_timeout: float, out: Path) -> dict:
    """Grade the instructor's own solution as a student's, with the batch's sandbox and limits; raise
    ``SelfCheckFailed`` (naming what failed and the run's output) unless it earns every automatic point."""
    result = grade_one(assignment, judges, "instructor-solution", Path(f"{assignment.name} (instructor solution)"),
                       work, runner, cell_timeout, notebook=nbformat.from_dict(assignment.reference))
    shutil.rmtree(work, ignore_errors=True)
    record = {"homework": assignment.name, "source_sha256": assignment.digest, "cell_timeout": cell_timeout,
              "total": result["total"], "max_points": result["max_points"], "status": result["status"],
              "failed": {qid: q["failed"] for qid, q in result["questions"].items() if q["failed"]},
              "output_tail": result.get("output_tail", "")}
    record["passed"] = result["status"] == "ok" and result["total"] == result["max_points"]
    (out / ".grader" / "self-check.json").write_text(json.dumps(record, indent=2))
    if not record["passed"]:
        failed = "; ".join(f"{f['test']}: {f['detail']}" for fs in record["failed"].values() for f in fs)[:600]
        tail = "\n    ".join(record["output_tail"].strip().splitlines()[-12:])
        raise SelfCheckFailed(
            f"the instructor's own solution of {assignment.name} scored {result['total']} / {result['max_points']} "
            f"in this sandbox ({result['status']}), so the class was not graded: whatever fails here would be "
            f"every student's zero. Failed tests: {failed or 'none'}. The run's output ended:\n    {tail or '(nothing)'}\n"
            f"Fix the machine or the instructor notebook (details in {out / '.grader' / 'self-check.json'}), "
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


def grade(homework: str, submissions: list[Path], out: Path, workers: int = WORKERS, cell_timeout: float = CELL_TIMEOUT,
          progress: bool = True, source_dir: Path = SOURCE_DIR, sandbox: bool = True,
          limits: Limits | None = None, shard: tuple[int, int] | None = None,
          key_file: Path | None = None, check_first: bool = True) -> list[dict]:
    """Grade every submission into ``out``; a finished, signed, unchanged result is not graded again.

    With ``check_first`` (the default) the instructor's solution is graded first with the same sandbox
    and limits, and the batch is refused (``SelfCheckFailed``) unless it earns full marks. A result that
    says "grader failure, not graded" is graded again on the next run. With ``shard=(i, n)`` only the
    i-th of n deterministic parts is graded, and ``out/shard.json`` records what ``merge`` needs; the
    shards must share ``key_file``."""
    if shard is not None and key_file is None:
        raise cells.FormatError("--shard needs --key FILE, one key shared by every shard "
                                "(make it once: python -m autograder key grader.key)")
    from tqdm.auto import tqdm

    source_path = find_source(homework, source_dir)
    assignment = Assignment.read(source_path)
    students = collect(submissions)
    whole_class = class_fingerprint(students)
    if shard is not None:
        students = shard_of(students, *shard)
    out.mkdir(parents=True, exist_ok=True)
    key = grader_key(out, key_file)
    judges = {t.key: Judge(t, seed_for(key, t)) for q in assignment.questions for t in q.tests}
    results_dir = out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)

    def done(student: str, path: Path) -> dict | None:
        saved = results_dir / f"{student}.json"
        try:
            result = json.loads(saved.read_text())
        except (OSError, ValueError):
            return None
        fresh = (verified(result, key) and result.get("sha256") == file_sha256(path)
                 and result.get("source_sha256") == assignment.digest and result.get("version") == RESULT_VERSION
                 and result.get("graded") is True)
        return result if fresh else None

    results = {s: r for s, p in students.items() if (r := done(s, p)) is not None}
    todo = {s: p for s, p in students.items() if s not in results}
    sweep_stale()
    temp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))
    runner = Runner(limits or Limits(), sandbox=sandbox, workers=workers)
    previous = _catch_signals()
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        if todo and check_first:
            self_check(assignment, judges, temp / ".self-check", runner, cell_timeout, out)

        def one(item):
            student, path = item
            result = sign(grade_one(assignment, judges, student, path, temp / student, runner, cell_timeout), key)
            report.write_student(result, out)  # written as soon as known: an interrupted run resumes here
            return result

        bar = tqdm(total=len(todo), desc=f"grading {source_path.stem}", unit="submission", disable=not progress)
        pending = {pool.submit(one, item) for item in todo.items()}
        while pending:  # short waits: the main thread must stay free to take SIGTERM and SIGINT
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                result = future.result()
                results[result["student"]] = result
                bar.update()
        bar.close()
    finally:
        runner.close()                      # kills every run still going; refuses new ones
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(temp, ignore_errors=True)
        _restore_signals(previous)
    ordered = [results[s] for s in sorted(results)]
    report.write_summary(ordered, assignment.columns, out)
    if shard is not None:
        manifest = {"homework": source_path.stem, "source_sha256": assignment.digest, "key": key_fingerprint(key),
                    "shard": list(shard), "students": sorted(results), "class": whole_class,
                    "version": RESULT_VERSION,
                    "questions": [[q.id, q.points, "manual"] if q.manual else [q.id, q.points]
                                  for q in assignment.columns]}
        (out / "shard.json").write_text(json.dumps(manifest, indent=2))
    return ordered


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
