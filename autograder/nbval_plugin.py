"""A pytest plugin loaded beside nbval in the sandbox: it reports, per cell, the facts the harness
observes on a private pipe, for the grader to tell a student's failure from its own.

- ``{"event": "started"}`` once pytest runs inside the sandbox (the sandbox and Python started);
- ``{"event": "begin", "cell": i, "kernel_alive": ...}`` before a cell is sent to the kernel: the first
  one with a live kernel is the moment the student's code first runs. Whatever fails before it is the
  grader's failure (no sandbox, no kernel), never the student's;
- ``{"cell": i, "passed": ..., "seconds": ..., "kernel_alive": ..., "cpu": ..., "waited": ...}`` after it.
  ``cpu`` is the CPU time every process of the run used during the cell, ``waited`` the time the
  kernel's threads spent runnable but waiting for a CPU (``/proc/<pid>/schedstat``): a cell that timed
  out with little CPU of its own while it waited was starved by the machine, not stuck in a loop.

The pipe's fd is given in AUTOGRADER_EVENTS_FD and is not inherited by the kernel; this process
marks itself non-dumpable, so that the student's kernel (same uid) can neither open its fds through
/proc nor ptrace it. What the student prints never becomes a status: only these events do. The
numbers come from the Linux kernel's accounting, which a process cannot rewrite.
"""

import ctypes
import json
import os
import re
import time

import pytest

PR_SET_DUMPABLE = 4
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TICK = os.sysconf("SC_CLK_TCK")
_events = None


def _send(event: dict) -> None:
    if _events is not None:
        _events.write(json.dumps(event) + "\n")


def pytest_configure(config):
    global _events
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    fd = os.environ.pop("AUTOGRADER_EVENTS_FD", None)
    if fd is not None:
        os.set_inheritable(int(fd), False)
        _events = os.fdopen(int(fd), "w", buffering=1)
    _send({"event": "started"})


def _last_error_line(excinfo) -> str:
    """The last line of the cell's own traceback: the student's error, shown back to them, capped."""
    text = getattr(excinfo.value, "inner_traceback", None) or str(excinfo.value)
    lines = [line.strip() for line in _ANSI.sub("", str(text)).splitlines() if line.strip()]
    return (lines[-1] if lines else "")[:300]


def _run_cpu_seconds() -> float:
    """CPU time of the run's processes, with their reaped children's: in the sandbox every process of its
    pid namespace; without one, this process and its descendants (not the rest of the machine)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                stats[int(entry)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))  # ppid; u+s+cu+cs time
            except (OSError, IndexError, ValueError):
                pass
    if os.environ.get("AUTOGRADER_OWN_PID_NAMESPACE") != "1":
        ours, grew = {os.getpid()}, True
        while grew:
            grew = False
            for pid, (ppid, _) in stats.items():
                if ppid in ours and pid not in ours:
                    ours.add(pid)
                    grew = True
        stats = {pid: value for pid, value in stats.items() if pid in ours}
    return sum(ticks for _, ticks in stats.values()) / _TICK


def _waited_seconds(pid: int | None) -> float:
    """Time the threads of ``pid`` spent runnable but not running (schedstat's second field)."""
    if pid is None:
        return 0.0
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                pass
    except OSError:
        pass
    return total / 1e9


def _kernel(item):
    return getattr(item.parent, "kernel", None)


def _kernel_pid(kernel) -> int | None:
    process = getattr(getattr(getattr(kernel, "km", None), "provisioner", None), "process", None)
    return getattr(process, "pid", None)


def _cell(item) -> int | None:
    match = re.fullmatch(r"Cell (\d+)", item.name)
    return int(match.group(1)) if match else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    index, kernel = _cell(item), _kernel(item)
    if index is not None:
        pid = _kernel_pid(kernel)
        item._autograder_before = (time.monotonic(), _run_cpu_seconds(), _waited_seconds(pid), pid)
        _send({"event": "begin", "cell": index, "kernel_alive": bool(kernel is not None and kernel.is_alive())})
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    index = _cell(item)
    if call.when != "call" or index is None:
        return
    kernel = _kernel(item)
    event = {"cell": index, "passed": report.passed, "seconds": round(call.duration, 3),
             "kernel_alive": bool(kernel is not None and kernel.is_alive())}
    before = getattr(item, "_autograder_before", None)
    if before is not None:
        event["cpu"] = round(_run_cpu_seconds() - before[1], 3)
        event["waited"] = round(_waited_seconds(before[3]) - before[2], 3)
    if not report.passed and call.excinfo is not None:
        event["error"] = _last_error_line(call.excinfo)
    _send(event)
