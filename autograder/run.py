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

from .defaults import KERNEL_STARTUP_SECONDS, RUN_SLACK_SECONDS
from .sandbox import Outcome, Runner

NOTEBOOK = "submission.ipynb"


STARVED_CPU_SHARE = 1 / 3   # a timed-out cell that got less CPU than this share of its limit, while it
                            # waited for a CPU longer than it ran, was starved by the machine


@dataclass
class CellResult:
    passed: bool
    timeout: bool = False        # it ran for the whole cell limit
    kernel_died: bool = False    # the kernel was dead after it
    error: str = ""              # the last line of the student's own error (shown to them, capped)
    starved: bool = False        # it timed out because the machine gave it no CPU, not by its own doing
    seconds: float = 0.0         # wall-clock time the harness measured for it


@dataclass
class RunResult:
    cells: dict[int, CellResult] = field(default_factory=dict)
    outcome: Outcome | None = None
    started: bool = False        # the harness ran inside the sandbox
    began: bool = False          # a cell was sent to a live kernel: from then on the student's code runs

    @property
    def grader_failure(self) -> str:
        """Why this run says nothing about the student (empty when it does): what failed is the grader's.

        Decided only from what happened before the student's first cell ran, and from the Linux kernel's
        accounting: nothing the student's code does can produce it."""
        tail = self.outcome.output.decode(errors="replace").strip().splitlines()[-3:]
        said = f": {' / '.join(line[:200] for line in tail)}" if tail else ""
        how = "timed out" if self.outcome.timed_out else f"exit {self.outcome.returncode}"
        if not self.started:
            return f"the sandbox did not start ({how}){said}"
        if not self.began:
            return f"no kernel started ({how}){said}"
        starved = [index for index, cell in self.cells.items() if cell.starved]
        if starved:
            return f"the machine's CPU was too busy: cell {starved[0]} waited for a CPU longer than it ran"
        return ""

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
            f"--nbval-cell-timeout={cell_timeout}", f"--nbval-kernel-startup-timeout={KERNEL_STARTUP_SECONDS}",
            "--rootdir", ".", NOTEBOOK]


def _number(event: dict, name: str) -> float:
    value = event.get(name, 0.0)
    return max(0.0, float(value)) if isinstance(value, (int, float)) and value == value else 0.0


def parse_events(events: bytes, cell_timeout: float) -> tuple[dict[int, CellResult], bool, bool]:
    """The cells' results, whether the harness started, and whether a cell began on a live kernel.

    One JSON object a line, from the harness; malformed lines are dropped, never guessed at."""
    cells: dict[int, CellResult] = {}
    started = began = False
    for line in events.decode(errors="replace").splitlines():
        try:
            event = json.loads(line)
            if event.get("event") == "started":
                started = True
                continue
            if event.get("event") == "begin":
                began = began or event.get("kernel_alive") is True
                continue
            index, passed, seconds = int(event["cell"]), bool(event["passed"]), float(event["seconds"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        timeout = not passed and seconds >= cell_timeout
        cpu, waited = _number(event, "cpu"), _number(event, "waited")
        cells[index] = CellResult(passed, timeout=timeout, seconds=max(0.0, seconds),
                                  kernel_died=not passed and not event.get("kernel_alive", True),
                                  error=str(event.get("error", ""))[:300],
                                  starved=timeout and cpu < STARVED_CPU_SHARE * cell_timeout and waited > cpu)
    return cells, started, began


def whole_run_limit(cell_timeout: float, code_cells: int) -> float:
    """Seconds a whole run may take: the kernel's start-up, some slack, and every code cell's limit."""
    return KERNEL_STARTUP_SECONDS + RUN_SLACK_SECONDS + cell_timeout * code_cells


def run_notebook(runner: Runner, work: Path, cell_timeout: float, total_timeout: float) -> RunResult:
    """Run ``work/submission.ipynb``; every cell is executed even when earlier ones fail."""
    outcome = runner.run(pytest_argv(cell_timeout), work, total_timeout)
    cells, started, began = parse_events(outcome.events, cell_timeout)
    return RunResult(cells, outcome, started, began)
