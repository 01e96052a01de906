"""What grading keeps of each run so that ``rejudge`` can judge it again without running anything.

- **The exports.** What each probe left for its judge, exactly as ``judging.capture`` read it, is kept in
  ``OUT/exports/<student>/`` under the file's sha256 (content-addressed: no name of the student's or the
  instructor's becomes a path). The result records, per test and suffix, ``"sha256:<hex>"``, ``"absent"``
  or ``"refused: <why>"`` (a link, a FIFO, a file over the cap): those records are inside the signed
  result, so an export changed after grading no longer matches its signed hash and is refused (``Tampered``).
- **The fingerprint.** What a run's exports depend on, one entry per thing that can change: the released
  notebook (it decides which submitted cell is which), each test's probe (its code with the question's
  setup for probes, and the bytes of the inputs its judge gives it: a changed ``inputs(rng)`` changes
  what the probe computed), each question's own-code rule and the names its solution defines (they
  decide where probes go and what the rule checks). Judges, points, messages and written points are not
  in it: those are what ``rejudge`` applies.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from .judging import EXPORT_CAP, open_regular

EXPORTS_DIR = "exports"
SELF_CHECK_EXPORTS = Path(".grader") / "self-check-exports"
ABSENT, REFUSED, SHA = "absent", "refused: ", "sha256:"
RELEASED = "released notebook"


class Tampered(ValueError):
    """A kept export that is missing or not what its signed result says: it is never judged."""


def fingerprint(released_sha256: str, questions, judges: dict, solution_names: dict[str, set[str]]) -> dict[str, str]:
    """One entry per thing a run's exports depend on (see the module's docstring), each a str."""
    entries = {RELEASED: released_sha256}
    for question in questions:
        entries[f"own-code rule of {question.id}"] = question.rule or "none"
        entries[f"names {question.id}'s solution defines"] = ", ".join(sorted(solution_names.get(question.id, ())))
        for test in question.tests:
            digest = hashlib.sha256(test.sandbox_code.encode())
            for suffix, data in sorted(judges[test.key].input_files.items()):
                digest.update(b"\0" + suffix.encode() + b"\0" + data)
            entries[f"probe {test.key}"] = digest.hexdigest()
    return entries


def changed(then: dict[str, str] | None, now: dict[str, str]) -> list[str]:
    """The entries of ``now`` that differ from ``then`` (added or removed ones included), in order."""
    then = then or {}
    return [name for name in [*now, *(n for n in then if n not in now)] if then.get(name) != now.get(name)]


def keep(captured: dict[str, dict[str, bytes | str | None]], folder: Path) -> dict[str, dict[str, str]]:
    """Write every captured export into ``folder`` (emptied first) under its sha256; the records to sign."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    records: dict[str, dict[str, str]] = {}
    for key, files in captured.items():
        records[key] = {}
        for suffix, value in files.items():
            if value is None:
                records[key][suffix] = ABSENT
            elif isinstance(value, str):
                records[key][suffix] = REFUSED + value
            else:
                digest = hashlib.sha256(value).hexdigest()
                (folder / digest).write_bytes(value)
                records[key][suffix] = SHA + digest
    return records


def load(records: dict[str, dict[str, str]], folder: Path) -> dict[str, dict[str, bytes | str | None]]:
    """The captured exports that ``keep`` wrote, each file checked against its (signed) sha256."""
    captured: dict[str, dict[str, bytes | str | None]] = {}
    for key, files in records.items():
        captured[key] = {}
        for suffix, record in files.items():
            if record == ABSENT:
                captured[key][suffix] = None
            elif record.startswith(REFUSED):
                captured[key][suffix] = record[len(REFUSED):]
            elif record.startswith(SHA):
                captured[key][suffix] = _read_checked(folder, record[len(SHA):], f"{key}{suffix}")
            else:
                raise Tampered(f"the record of export {key}{suffix} is not one grading writes")
    return captured


def _read_checked(folder: Path, digest: str, name: str) -> bytes:
    path = folder / digest
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise Tampered(f"the record of export {name} is not a sha256")
    try:
        with open_regular(path) as f:
            data = f.read(EXPORT_CAP + 1)
    except OSError:
        raise Tampered(f"export {name} is missing from {folder} (or not a plain file)") from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise Tampered(f"export {name} ({path}) was changed after grading: it does not match its signed sha256")
    return data
