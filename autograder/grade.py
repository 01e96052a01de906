"""Grade many submissions: one fresh process and kernel each, in parallel, resumable."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from . import cells, report
from .inject import inject
from .release import SOURCE_DIR
from .run import run_notebook

RESULT_VERSION = 1


def find_source(homework: str) -> Path:
    """``hw1_alexnet`` (or a path) → the instructor notebook."""
    path = Path(homework)
    if path.suffix == ".ipynb" and path.exists():
        return path
    candidate = SOURCE_DIR / f"{path.stem}.ipynb"
    if not candidate.exists():
        known = ", ".join(p.stem for p in sorted(SOURCE_DIR.glob("*.ipynb")))
        raise FileNotFoundError(f"no instructor notebook for {homework!r}; known homework: {known}")
    return candidate


def collect(submissions: list[Path]) -> dict[str, Path]:
    """Student name → notebook. A folder contributes every .ipynb below it; the name is the file's stem."""
    found: dict[str, Path] = {}
    for item in submissions:
        paths = sorted(item.rglob("*.ipynb")) if item.is_dir() else [item]
        for path in paths:
            if ".ipynb_checkpoints" in path.parts:
                continue
            if not path.exists():
                raise FileNotFoundError(f"submission {path} does not exist")
            name = path.stem
            if name in found and found[name] != path:
                name = "_".join(path.with_suffix("").parts[-2:])  # same stem in two folders: keep both
            found[name] = path
    return dict(sorted(found.items()))


def load(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """The submission as a notebook, or None and why it cannot be read."""
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # invalid JSON, wrong schema, unreadable bytes
        return None, f"invalid notebook: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    if not isinstance(notebook.get("cells"), list):
        return None, "invalid notebook: no cells"
    return notebook, ""


def score(questions: list[cells.Question], injected, run) -> dict:
    """Points per question from the per-cell verdicts, plus the messages the student may read."""
    per_question = {q.id: {"points": 0.0, "max": q.points, "passed": [], "failed": []} for q in questions}
    for index, test in injected.hidden_at.items():
        verdict = run.cells.get(index)
        entry = per_question[test.question]
        if verdict is not None and verdict.passed:
            entry["points"] += test.points
            entry["passed"].append(test.key)
        else:
            entry["failed"].append({"test": test.key, "points": test.points, "message": test.message,
                                    "reason": verdict.reason if verdict else "not run"})
    for index, qid in injected.answer_at.items():
        verdict = run.cells.get(index)
        if verdict is not None and not verdict.passed:
            per_question[qid]["answer_error"] = verdict.detail or verdict.reason
    return per_question


def status_of(injected, run) -> str:
    notes = []
    reasons = {v.reason for v in run.cells.values() if not v.passed}
    if run.timed_out:
        notes.append("timeout: the whole notebook ran too long")
    if run.crashed:
        notes.append("grader error: " + run.crashed.splitlines()[0][:200])
    if "timeout" in reasons:
        notes.append("timeout in a cell")
    if "kernel died" in reasons:
        notes.append("kernel died")
    if injected.missing_answers:
        notes.append("answer cell missing: " + ", ".join(injected.missing_answers))
    return "; ".join(notes) or "ok"


def grade_one(source: nbformat.NotebookNode, homework: str, student: str, path: Path, work: Path,
              cell_timeout: float) -> dict:
    """Every step for one student; never raises for a bad submission."""
    questions = cells.questions(source)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    base = {"student": student, "submission": str(path), "sha256": digest, "homework": homework,
            "version": RESULT_VERSION, "max_points": sum(q.points for q in questions)}
    notebook, problem = load(path)
    if notebook is None:
        return {**base, "status": problem, "total": 0.0,
                "questions": {q.id: {"points": 0.0, "max": q.points, "passed": [], "failed": []} for q in questions}}
    injected = inject(source, notebook)
    folder = work / student
    folder.mkdir(parents=True, exist_ok=True)
    graded = folder / f"{homework}.ipynb"
    nbformat.write(injected.notebook, graded)
    code_cells = sum(1 for c in injected.notebook.cells if c.cell_type == "code")
    run = run_notebook(graded, cell_timeout, total_timeout=60 + cell_timeout * code_cells)
    per_question = score(questions, injected, run)
    return {**base, "status": status_of(injected, run), "questions": per_question,
            "total": sum(q["points"] for q in per_question.values())}


def grade(homework: str, submissions: list[Path], out: Path, workers: int = 1, cell_timeout: float = 30,
          progress: bool = True) -> list[dict]:
    """Grade every submission into ``out``; students already graded (same file hash) are not graded again."""
    from tqdm.auto import tqdm

    source_path = find_source(homework)
    source = nbformat.read(source_path, as_version=4)  # read once, shared by every student's grading
    students = collect(submissions)
    results_dir = out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)

    def done(student: str, path: Path) -> dict | None:
        saved = results_dir / f"{student}.json"
        if not saved.exists():
            return None
        result = json.loads(saved.read_text())
        same = result.get("sha256") == hashlib.sha256(path.read_bytes()).hexdigest()
        return result if same and result.get("version") == RESULT_VERSION else None

    results = {s: r for s, p in students.items() if (r := done(s, p)) is not None}
    todo = {s: p for s, p in students.items() if s not in results}
    work = Path(tempfile.mkdtemp(prefix="grading-"))
    try:
        def one(item):
            student, path = item
            result = grade_one(source, source_path.stem, student, path, work, cell_timeout)
            report.write_student(result, out)  # written as soon as known: an interrupted run resumes here
            return result

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            bar = tqdm(total=len(todo), desc=f"grading {source_path.stem}", unit="submission", disable=not progress)
            for result in pool.map(one, todo.items()):
                results[result["student"]] = result
                bar.update()
            bar.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ordered = [results[s] for s in sorted(results)]
    report.write_summary(ordered, cells.questions(source), out)
    return ordered
