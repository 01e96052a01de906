"""A pytest plugin loaded beside nbval in the sandbox: it reports, per cell, the facts the harness
observes (passed or not, how long it ran, whether the kernel is still alive) on a private pipe.

The pipe's fd is given in AUTOGRADER_EVENTS_FD and is not inherited by the kernel; this process
marks itself non-dumpable, so that the student's kernel (same uid) can neither open its fds through
/proc nor ptrace it. What the student prints never becomes a status: only these events do.
"""

import ctypes
import json
import os
import re

import pytest

PR_SET_DUMPABLE = 4
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_events = None


def pytest_configure(config):
    global _events
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    fd = os.environ.pop("AUTOGRADER_EVENTS_FD", None)
    if fd is not None:
        os.set_inheritable(int(fd), False)
        _events = os.fdopen(int(fd), "w", buffering=1)


def _last_error_line(excinfo) -> str:
    """The last line of the cell's own traceback: the student's error, shown back to them, capped."""
    text = getattr(excinfo.value, "inner_traceback", None) or str(excinfo.value)
    lines = [line.strip() for line in _ANSI.sub("", str(text)).splitlines() if line.strip()]
    return (lines[-1] if lines else "")[:300]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    match = re.fullmatch(r"Cell (\d+)", item.name)
    if call.when != "call" or _events is None or match is None:
        return
    kernel = getattr(item.parent, "kernel", None)
    event = {"cell": int(match.group(1)), "passed": report.passed, "seconds": round(call.duration, 3),
             "kernel_alive": bool(kernel is not None and kernel.is_alive())}
    if not report.passed and call.excinfo is not None:
        event["error"] = _last_error_line(call.excinfo)
    _events.write(json.dumps(event) + "\n")
