"""Run one notebook under pytest + nbval in a fresh process and kernel; read the verdict per cell."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m|#x1B\[[0-9;]*m")


@dataclass
class CellResult:
    passed: bool
    reason: str = ""      # "", "error", "timeout", "kernel died", "skipped"
    detail: str = ""      # the last line of the error, for the student's own cells


@dataclass
class RunResult:
    cells: dict[int, CellResult]
    timed_out: bool = False   # the whole run passed its limit and was killed
    crashed: str = ""         # pytest itself failed to produce a report


def _classify(message: str) -> tuple[str, str]:
    text = _ANSI.sub("", message)
    if "Timeout of" in text or "timed out" in text:
        return "timeout", ""
    if "Kernel died" in text or "DeadKernel" in text or "kernel died" in text:
        return "kernel died", ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception|Interrupt)\b", line)]
    return "error", (errors[-1] if errors else (lines[-1] if lines else ""))[:300]


def parse_junit(path: Path) -> dict[int, CellResult]:
    """nbval names items "Cell N", N counting code cells from 0."""
    results: dict[int, CellResult] = {}
    for case in ET.parse(path).iter("testcase"):
        match = re.match(r"Cell (\d+)", case.get("name", ""))
        if not match:
            continue
        index = int(match.group(1))
        problems = [child for child in case if child.tag in ("failure", "error", "skipped")]
        if not problems:
            results[index] = CellResult(True)
            continue
        problem = problems[0]
        died = any(p.get("name") == "kernel" and p.get("value") == "died" for p in case.iter("property"))
        if died:
            results[index] = CellResult(False, "kernel died")
            continue
        message = (problem.get("message") or "") + "\n" + (problem.text or "")
        if problem.tag == "skipped":
            reason, detail = _classify(message)
            results[index] = CellResult(False, "skipped" if reason == "error" else reason, "")
        else:
            reason, detail = _classify(message)
            results[index] = CellResult(False, reason, detail)
    return results


def run_notebook(notebook: Path, cell_timeout: float, total_timeout: float, env: dict | None = None) -> RunResult:
    """pytest --nbval-lax on ``notebook``; every cell is executed even when earlier ones fail."""
    report = notebook.with_suffix(".junit.xml")
    report.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "autograder.nbval_plugin",
               "--nbval-lax", "--nbval-current-env",
               f"--nbval-cell-timeout={cell_timeout}", f"--junitxml={report}", "-o", "junit_logging=no",
               "--rootdir", str(notebook.parent), str(notebook)]
    log = notebook.with_suffix(".log")
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=notebook.parent, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
        try:
            process.wait(timeout=total_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the kernel too: it is in the same session
            process.wait()
            return RunResult({}, timed_out=True)
    if not report.exists():
        tail = log.read_bytes()[-2000:].decode(errors="replace")
        return RunResult({}, crashed=f"pytest exited with {process.returncode} and no report: {tail}")
    return RunResult(parse_junit(report))
