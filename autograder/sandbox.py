"""Run a command in a bubblewrap sandbox, the way every student's notebook is run.

What the sandbox gives (issue 9): a read-only view of the system, the Python installation and the
parts of this repository a homework needs; one private writable work folder; no network; a non-root
uid; a pid namespace whose processes all die with the run; limits on memory, CPU time, processes and
file size. It cannot see the grader's output folder, other submissions, the instructor sources, the
judges, or ``book/models`` (the reference implementations: an empty folder is mounted over it, so
``import book.models`` fails inside, and the own-code rules in ``rules.py`` reject it outside).

Output is capped where the grader reads it: past ``Limits.output`` bytes the run is killed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import defaults

REPO = Path(__file__).resolve().parents[1]
INSIDE = Path("/grading")            # the work folder, as the run sees it
HIDDEN = ("book/models",)           # reference implementations of graded questions
SHARED = ("book", "autograder/__init__.py", "autograder/probe.py", "autograder/nbval_plugin.py")
FIRST_UID = 61000                   # one uid per concurrent run, so that process limits are per run
INSTALL_HINT = ("bubblewrap (bwrap) is needed to grade safely: install it with `apt-get install bubblewrap`, "
                "or pass --no-sandbox to grade without isolation (grades are then not trustworthy)")
# jsonschema imports rfc3987_syntax when present, which builds a grammar at import (about 1 s of every
# run's start-up, for IRI validation nbformat never asks for); an empty folder over it skips that.
SKIPPED_PACKAGES = ("rfc3987_syntax",)


class SandboxUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Limits:
    memory: int = defaults.MEMORY              # bytes of address space
    cpu_seconds: int = defaults.CPU_SECONDS
    processes: int = defaults.PROCESSES        # processes and threads of the run's uid
    file_size: int = defaults.FILE_SIZE        # largest file the run may write
    output: int = defaults.OUTPUT_CAP          # bytes of stdout+stderr the grader reads before it stops the run


@dataclass
class Outcome:
    returncode: int | None
    output: bytes                  # the first ``Limits.output`` bytes
    events: bytes                  # what the harness wrote on its private channel
    timed_out: bool = False        # killed by the grader's wall-clock limit
    capped: bool = False           # killed for printing more than ``Limits.output`` bytes
    seconds: float = 0.0


def check_available() -> None:
    """Raise SandboxUnavailable with the fix when bubblewrap is missing or cannot start here."""
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable(INSTALL_HINT)
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise SandboxUnavailable(f"bwrap cannot create a sandbox here ({probe.stderr.strip()}); user "
                                 f"namespaces may be disabled. {INSTALL_HINT}")


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    return args


def _parents(paths: list[str]) -> list[str]:
    """``--dir`` for every ancestor of ``paths``, world-traversable: bwrap would make them 0700 as root."""
    ancestors = sorted({str(p) for path in paths for p in Path(path).parents if str(p) not in ("/", "/tmp")}, key=len)
    return [arg for folder in ancestors for arg in ("--perms", "0755", "--dir", folder)]


def _python_binds() -> list[str]:
    args = []
    for prefix in dict.fromkeys([sys.base_prefix, sys.prefix]):   # the installation, then the venv
        if not prefix.startswith("/usr/"):
            args += ["--ro-bind", prefix, prefix]
    for package in SKIPPED_PACKAGES:
        for site in {p for p in sys.path if p.endswith("site-packages")}:
            if os.path.isdir(os.path.join(site, package)):
                args += ["--tmpfs", os.path.join(site, package)]
    for part in SHARED:
        args += ["--ro-bind", str(REPO / part), str(REPO / part)]
    for part in HIDDEN:
        args += ["--tmpfs", str(REPO / part), "--remount-ro", str(REPO / part)]
    return _parents([args[i + 2] for i, a in enumerate(args) if a == "--ro-bind"]) + args


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment: nothing of the grader's leaks in but the CPU settings benchmarks emulate."""
    env = {"HOME": str(INSIDE), "PATH": f"{sys.prefix}/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           # this checkout's book/ and autograder/, wherever an editable install of another one points
           "PYTHONPATH": str(REPO),
           # no '' on sys.path: a module the student writes into the work folder can never stand in for
           # one the harness imports later (it runs beside the student's kernel)
           "PYTHONSAFEPATH": "1",
           "AUTOGRADER_WORK": str(INSIDE), "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": "/tmp", "IPYTHONDIR": "/tmp/ipython", "JUPYTER_RUNTIME_DIR": "/tmp/jupyter",
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
           # one thread each: runs are parallel already, and every thread counts against the process limit
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
    for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "OPENBLAS_CORETYPE",
                 "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return {**env, **(extra or {})}


def command(argv: list[str], work: Path, env: dict[str, str], limits: Limits, sandbox: bool,
            uid: int | None = None) -> list[str]:
    """``prlimit ... [bwrap ...] argv``: the limits, then (unless ``sandbox`` is False) the sandbox.

    As root, bwrap needs no user namespace (it can bind a Python under /root, which other uids cannot
    traverse) and ``setpriv`` drops the run to ``uid`` with no capabilities before Python starts. As
    another user, bwrap maps that user to ``nobody`` in a user namespace of its own.
    """
    nproc = limits.processes + (0 if uid is not None else _processes_of(os.getuid()))
    prefix = ["prlimit", f"--as={limits.memory}", f"--cpu={limits.cpu_seconds}", f"--nproc={nproc}",
              f"--fsize={limits.file_size}", "--core=0", "--"]
    if not sandbox:
        return prefix + ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv]
    if uid is not None:
        isolation = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all"]
    else:
        isolation = ["--unshare-all", "--uid", "65534", "--gid", "65534", "--disable-userns"]
        drop = []
    # bwrap mounts in argument order, and a later mount hides what an earlier one put below it: /tmp's
    # tmpfs comes first, so that a checkout or a Python under /tmp (a common place to clone) stays visible.
    box = ["bwrap", *isolation, "--die-with-parent", "--new-session",
           *_system_binds(), "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp",
           *_python_binds(), "--bind", str(work), str(INSIDE), "--chdir", str(INSIDE), "--clearenv"]
    for key, value in env.items():
        box += ["--setenv", key, value]
    return prefix + box + ["--", *drop, *argv]


def _processes_of(uid: int) -> int:
    """Processes (threads included) that ``uid`` runs now: RLIMIT_NPROC counts them all."""
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                count += len(os.listdir(entry / "task"))
        except OSError:
            pass
    return count


class UidPool:
    """Distinct uids for concurrent runs when the grader is root; otherwise the grader's own uid."""

    def __init__(self, size: int):
        self._free = [FIRST_UID + i for i in range(size)] if os.geteuid() == 0 else None
        self._lock = threading.Lock()

    def take(self) -> int | None:
        if self._free is None:
            return None
        with self._lock:
            return self._free.pop(0)

    def give(self, uid: int | None) -> None:
        if uid is not None:
            with self._lock:
                self._free.append(uid)


@dataclass
class Runner:
    """Starts runs and remembers them, so that an interrupted grader can kill every one it started."""
    limits: Limits = field(default_factory=Limits)
    sandbox: bool = True
    workers: int = defaults.WORKERS    # how many runs at once: one uid each when the grader is root

    def __post_init__(self):
        self._uids = UidPool(self.workers)
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Kill every run in progress and refuse new ones (an interrupted grader calls this)."""
        self._closed.set()
        with self._lock:
            running = list(self._running)
        for process in running:
            _kill(process)

    def run(self, argv: list[str], work: Path, wall_seconds: float, env: dict[str, str] | None = None) -> Outcome:
        if self.closed:
            raise RuntimeError("the runner is closed")
        uid = self._uids.take()
        try:
            return self._run(argv, work, wall_seconds, env, uid)
        finally:
            self._uids.give(uid)

    def _run(self, argv, work: Path, wall_seconds: float, env, uid) -> Outcome:
        if uid is not None:  # the run's files must be its own, and nothing else writable
            for path in [work, *work.rglob("*")]:
                os.chown(path, uid, uid)
        events_read, events_write = os.pipe()
        alive_read, alive_write = os.pipe()  # run.LAUNCH's watch: we never write, we only hold it open
        full_env = environment({"AUTOGRADER_EVENTS_FD": str(events_write), "AUTOGRADER_ALIVE_FD": str(alive_read),
                                **(env or {})})
        if self.sandbox:
            full_env["AUTOGRADER_OWN_PID_NAMESPACE"] = "1"
        else:
            full_env = {**full_env, "AUTOGRADER_WORK": str(work), "HOME": str(work)}
        started = time.monotonic()
        try:
            process = subprocess.Popen(command(argv, work, full_env, self.limits, self.sandbox, uid),
                                       cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, pass_fds=(events_write, alive_read),
                                       start_new_session=True)
        finally:
            os.close(events_write)
            os.close(alive_read)
        with self._lock:
            self._running.add(process)
        if self.closed:
            _kill(process)
        output, events, capped = bytearray(), bytearray(), threading.Event()

        def on_flood():   # the student's output: past the cap the run is stopped
            capped.set()
            _kill(process)

        events_pipe = open(events_read, "rb")
        readers = [threading.Thread(target=_drain, args=(process.stdout, output, self.limits.output, on_flood),
                                    daemon=True),
                   threading.Thread(target=_drain, args=(events_pipe, events, self.limits.output), daemon=True)]
        for reader in readers:
            reader.start()
        timed_out = False
        try:
            process.wait(timeout=wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(process)
            process.wait()
        finally:
            with self._lock:
                self._running.discard(process)
            os.close(alive_write)
        for reader in readers:   # the pipes close when the pid namespace is gone
            reader.join(timeout=10)
        process.stdout.close()
        events_pipe.close()
        return Outcome(process.returncode, bytes(output), bytes(events), timed_out, capped.is_set(),
                       time.monotonic() - started)


def _drain(stream, into: bytearray, limit: int, on_overflow=None) -> None:
    """Read ``stream`` to its end, keeping the first ``limit`` bytes; past them, call ``on_overflow`` and stop."""
    while True:
        try:
            chunk = stream.read1(65536)
        except (ValueError, OSError):   # closed under us: the run is over
            return
        if not chunk:
            return
        if len(into) + len(chunk) > limit:
            into.extend(chunk[: limit - len(into)])
            if on_overflow is not None:
                on_overflow()
                return
        else:
            into.extend(chunk)


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL the run's process group: bwrap's death takes the whole pid namespace with it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
