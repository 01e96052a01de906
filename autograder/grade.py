"""Grade many submissions: each in its own sandboxed run, judged outside it, resumable, tamper-proof.

Per student: load → own-code rules (AST, trusted side) → inject probes → run in the sandbox (pytest +
nbval, one fresh kernel) → judges read the exported data (trusted side) → points → signed result.
Written answers (``"kind": "written"``) are only read as text, capped, and kept for grading by hand.
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
import threading
import unicodedata
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import nbformat

from . import cells, report, rules
from .inject import inject
from .judging import Judge
from .release import SOURCE_DIR
from .run import NOTEBOOK, RunResult, run_notebook
from .sandbox import Limits, Runner

RESULT_VERSION = 3                  # 3: results carry "written" and "manual_max"
SUBMISSION_CAP = 16 * 1024 * 1024   # bytes; a larger notebook is refused unread
WRITTEN_CAP = 20_000                # characters of one written answer that are kept
TEMP_PREFIX = "autograder-run-"
JUDGE_LOCK = threading.Lock()   # judges share torch's global state (dispatch modes): one at a time


class Interrupted(Exception):
    pass


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
    """Student name → notebook. A folder contributes every .ipynb below it; the name is the file's stem."""
    found: dict[str, Path] = {}
    for item in submissions:
        if not item.exists():
            raise FileNotFoundError(f"submission {item} does not exist")
        paths = sorted(item.rglob("*.ipynb")) if item.is_dir() else [item]
        for path in paths:
            if ".ipynb_checkpoints" in path.parts or path.is_symlink():
                continue
            name = _safe(path.stem)
            if name in found and found[name] != path:
                name = _safe("_".join(path.with_suffix("").parts[-2:]))  # same stem in two folders: keep both
            found[name] = path
    return dict(sorted(found.items()))


def _safe(name: str) -> str:
    """A student name that is one plain file name (it names their work folder and result files)."""
    return re.sub(r"[^\w.-]", "_", name).lstrip(".") or "unnamed"


def file_sha256(path: Path) -> str:
    """Streamed: a huge submission is hashed without being held in memory."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def load(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """The submission as a notebook, or None and why it cannot be read."""
    if path.stat().st_size > SUBMISSION_CAP:
        return None, f"invalid notebook: larger than {SUBMISSION_CAP // 2**20} MiB"
    try:
        notebook = nbformat.read(path, as_version=4)
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


# --------------------------------------------------------------------------- one student

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


def collect_written(written: list[cells.Written], notebook: nbformat.NotebookNode | None) -> dict:
    """Each written question's text from the submission, read as a string and never run.

    Matched by id like the answers; a question whose cell was duplicated gets the cells joined.
    Kept: at most ``WRITTEN_CAP`` characters, made inert by ``_readable``; ``chars`` is the full length."""
    found: dict[str, list[str]] = {w.id: [] for w in written}
    for cell in (notebook.cells if notebook is not None else []):
        meta = cells.info(cell)
        if meta.get("kind") == "written" and isinstance(meta.get("id"), str) and meta["id"] in found:
            source = cell.get("source", "")
            if isinstance(source, list):
                source = "".join(str(line) for line in source[:WRITTEN_CAP])
            found[meta["id"]].append(source if isinstance(source, str) else "")
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


def grade_one(questions, judges: dict[str, Judge], homework: str, student: str, path: Path, work: Path,
              runner: Runner, cell_timeout: float, source_digest: str, written: list[cells.Written] = ()) -> dict:
    """Every step for one student; never raises for a bad submission."""
    base = {"student": student, "submission": str(path), "sha256": file_sha256(path), "homework": homework,
            "source_sha256": source_digest, "version": RESULT_VERSION,
            "max_points": sum(q.points for q in questions), "manual_max": sum(w.points for w in written)}
    notebook, problem = load(path)
    if notebook is None:
        return {**base, "status": problem, "total": 0.0, "questions": empty_questions(questions),
                "written": collect_written(written, None)}
    collected = collect_written(written, notebook)
    code = [str(c.get("source", "")) for c in notebook.cells if c.get("cell_type") == "code"]
    answers = {cells.info(c).get("id"): str(c.get("source", "")) for c in notebook.cells
               if c.get("cell_type") == "code" and cells.info(c).get("kind") == "answer"
               and isinstance(cells.info(c).get("id"), str)}   # an unhashable id must not crash the batch
    broken = {q.id: found for q in questions if q.id in answers
              if (found := rules.violations(q.rule, answers[q.id], code))}
    injected = inject(questions, notebook)
    work.mkdir(parents=True)
    nbformat.write(injected.notebook, work / NOTEBOOK)
    for judge in judges.values():
        judge.write_inputs(work)
    code_cells = sum(1 for c in injected.notebook.cells if c.cell_type == "code")
    run = run_notebook(runner, work, cell_timeout, total_timeout=60 + cell_timeout * code_cells)
    if runner.closed:
        raise Interrupted(student)
    with JUDGE_LOCK:
        verdicts = {key: judge(work) for key, judge in judges.items()}
    per_question = score(questions, verdicts, injected, run, broken)
    notes = run.status
    if injected.missing_answers:
        notes.append("answer cell missing: " + ", ".join(injected.missing_answers))
    missing_written = [qid for qid, entry in collected.items() if entry["missing"]]
    if missing_written:
        notes.append("written answer cell missing: " + ", ".join(missing_written))
    if broken:
        notes.append("own-code rule broken: " + ", ".join(broken))
    return {**base, "status": "; ".join(notes) or "ok", "questions": per_question, "written": collected,
            "total": sum(q["points"] for q in per_question.values()), "seconds": round(run.outcome.seconds, 2)}


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


def grade(homework: str, submissions: list[Path], out: Path, workers: int = 1, cell_timeout: float = 30,
          progress: bool = True, source_dir: Path = SOURCE_DIR, sandbox: bool = True,
          limits: Limits | None = None, shard: tuple[int, int] | None = None,
          key_file: Path | None = None) -> list[dict]:
    """Grade every submission into ``out``; a finished, signed, unchanged result is not graded again.

    With ``shard=(i, n)`` only the i-th of n deterministic parts is graded, and ``out/shard.json``
    records what ``merge`` needs; the shards must share ``key_file``."""
    if shard is not None and key_file is None:
        raise cells.FormatError("--shard needs --key FILE, one key shared by every shard "
                                "(make it once: python -m autograder key grader.key)")
    from tqdm.auto import tqdm

    source_path = find_source(homework, source_dir)
    source_bytes = source_path.read_bytes()
    source_digest = hashlib.sha256(source_bytes).hexdigest()
    source = nbformat.reads(source_bytes.decode(), as_version=4)
    columns = cells.layout(source, str(source_path))        # every question, in notebook order
    questions = [q for q in columns if isinstance(q, cells.Question)]
    written = [q for q in columns if isinstance(q, cells.Written)]
    students = collect(submissions)
    whole_class = class_fingerprint(students)
    if shard is not None:
        students = shard_of(students, *shard)
    out.mkdir(parents=True, exist_ok=True)
    key = grader_key(out, key_file)
    judges = {t.key: Judge(t, seed_for(key, t)) for q in questions for t in q.tests}
    results_dir = out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)

    def done(student: str, path: Path) -> dict | None:
        saved = results_dir / f"{student}.json"
        try:
            result = json.loads(saved.read_text())
        except (OSError, ValueError):
            return None
        fresh = (verified(result, key) and result.get("sha256") == file_sha256(path)
                 and result.get("source_sha256") == source_digest and result.get("version") == RESULT_VERSION)
        return result if fresh else None

    results = {s: r for s, p in students.items() if (r := done(s, p)) is not None}
    todo = {s: p for s, p in students.items() if s not in results}
    sweep_stale()
    temp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))
    runner = Runner(limits or Limits(), sandbox=sandbox, workers=workers)
    previous = _catch_signals()
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        def one(item):
            student, path = item
            result = sign(grade_one(questions, judges, source_path.stem, student, path, temp / student, runner,
                                    cell_timeout, source_digest, written), key)
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
    report.write_summary(ordered, columns, out)
    if shard is not None:
        manifest = {"homework": source_path.stem, "source_sha256": source_digest, "key": key_fingerprint(key),
                    "shard": list(shard), "students": sorted(results), "class": whole_class,
                    "version": RESULT_VERSION,
                    "questions": [[q.id, q.points, "manual"] if q.manual else [q.id, q.points] for q in columns]}
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
