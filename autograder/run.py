"""Run one injected notebook under pytest + nbval (one fresh kernel) in the sandbox; read the facts.

The grader decides a run's status from what it observes itself: the exit code, its own wall-clock
limit, the output cap, and the harness's per-cell events (time taken, kernel alive). Never from the
text of an error a student's code printed or raised.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .sandbox import Outcome, Runner

NOTEBOOK = "submission.ipynb"


@dataclass
class CellResult:
    passed: bool
    timeout: bool = False        # it ran for the whole cell limit
    kernel_died: bool = False    # the kernel was dead after it
    error: str = ""              # the last line of the student's own error (shown to them, capped)


@dataclass
class RunResult:
    cells: dict[int, CellResult] = field(default_factory=dict)
    outcome: Outcome | None = None

    @property
    def status(self) -> list[str]:
        notes = []
        if self.outcome.timed_out:
            notes.append("timeout: the whole notebook ran too long and was stopped")
        if self.outcome.capped:
            notes.append("output cap: the run printed too much and was stopped")
        if any(c.timeout for c in self.cells.values()):
            notes.append("timeout in a cell")
        if any(c.kernel_died for c in self.cells.values()):
            notes.append("kernel died")
        stopped = self.outcome.timed_out or self.outcome.capped
        if not stopped and self.outcome.returncode not in (0, 1):
            notes.append(f"the run ended abnormally (exit {self.outcome.returncode})")
        return notes


# The run's first process asks to be killed when its parent (bwrap's init, pid 1 of the run's pid
# namespace) dies: setpriv's change of uid clears the parent-death signal bwrap had set. That covers a
# grader killed while the run goes on, not one killed while bwrap is still building the sandbox: bwrap
# sets its own parent-death signals only after that, so a run started in that window would live on
# (CI saw it once). Hence the watch on AUTOGRADER_ALIVE_FD, a pipe whose only write end the grader
# holds and never writes: its end of file means the grader is gone, however it died and whenever. Then
# every process of the run's namespace is killed (kill -1 reaches no further than the namespace), and
# bwrap's init, left without children, ends the sandbox.
LAUNCH = """\
import ctypes, os, resource, signal, sys, threading, time
ctypes.CDLL(None).prctl(1, signal.SIGKILL)
alive = int(os.environ.pop("AUTOGRADER_ALIVE_FD"))
os.set_inheritable(alive, False)
def watch():
    while os.read(alive, 1):
        pass
    if os.environ.get("AUTOGRADER_OWN_PID_NAMESPACE") == "1":
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # this process starts nothing more
        for _ in range(20):  # round after round: what forked during one is caught by the next
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:  # nothing left (or nothing started yet)
                break
            time.sleep(0.01)
    os._exit(137)
threading.Thread(target=watch, daemon=True).start()
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def pytest_argv(cell_timeout: float) -> list[str]:
    return [sys.executable, "-c", LAUNCH, "-q", "-p", "no:cacheprovider", "-p", "nbval",
            "-p", "autograder.nbval_plugin", "--nbval-lax", "--nbval-current-env",
            f"--nbval-cell-timeout={cell_timeout}", "--nbval-kernel-startup-timeout=30",
            "--rootdir", ".", NOTEBOOK]


def parse_events(events: bytes, cell_timeout: float) -> dict[int, CellResult]:
    """One JSON object a line, from the harness; malformed lines are dropped, never guessed at."""
    cells: dict[int, CellResult] = {}
    for line in events.decode(errors="replace").splitlines():
        try:
            event = json.loads(line)
            index, passed, seconds = int(event["cell"]), bool(event["passed"]), float(event["seconds"])
        except (ValueError, KeyError, TypeError):
            continue
        cells[index] = CellResult(passed, timeout=not passed and seconds >= cell_timeout,
                                  kernel_died=not passed and not event.get("kernel_alive", True),
                                  error=str(event.get("error", ""))[:300])
    return cells


def run_notebook(runner: Runner, work: Path, cell_timeout: float, total_timeout: float) -> RunResult:
    """Run ``work/submission.ipynb``; every cell is executed even when earlier ones fail."""
    outcome = runner.run(pytest_argv(cell_timeout), work, total_timeout)
    return RunResult(parse_events(outcome.events, cell_timeout), outcome)
