"""Late work: ``grade --deadline TIME --late-policy POLICY``, each piece a small function testable alone.

- ``parse_deadline``: ISO 8601 **with** a timezone (``2026-03-01T23:59:00+01:00``, ``...Z``). A naive time
  is refused: read in this machine's zone it would move every deadline by the offset of wherever grading
  happens to run.
- ``parse_policy``: ``none`` (late days are reported, nothing is taken off), ``zero`` (any late work gets
  0), or ``P%/day`` with an optional cap, ``P%/day,max=C%`` (0 < P, C <= 100). Nothing else is accepted.
- ``late_days``: the ceiling of the days past the deadline: exactly at the deadline is on time (0),
  one second late is 1 day, one day and one second is 2.
- ``penalty``: a share of the points **earned**, min(P × days, C) (1 for ``zero``), so the final grade is
  never below 0 and a late zero stays 0. It applies to the total *after* hand grading: ``grade`` writes
  ``final`` from the automatic total, ``finalize`` recomputes it from automatic + manual.
- ``submission_times``: from ``submissions.csv`` in a submissions folder (columns ``student, file,
  submitted_at``, as an LMS download gives them; ``file`` relative to that folder, ``student`` the name the
  grader gives the file, ``submitted_at`` ISO 8601 with a timezone), else the file's modification time,
  with a warning naming the student. A malformed manifest is refused, naming the row and the fix.

What ``grade`` decided is kept, signed with the grader key, in ``OUT/.grader/late.json``; ``finalize``
and ``rejudge`` read it from there.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from . import keys
from .cells import FormatError

MANIFEST = "submissions.csv"
MANIFEST_COLUMNS = ("student", "file", "submitted_at")
LATE_FILE = Path(".grader") / "late.json"
COLUMNS = ("submitted_at", "late_days", "penalty", "final")
DAY = timedelta(days=1)
FROM_MANIFEST, FROM_MTIME = MANIFEST, "file modification time"
POLICY_FORMS = "none, zero, P%/day or P%/day,max=C% (like 10%/day,max=50%)"


class LateError(FormatError):
    """A deadline, policy or manifest that cannot be read exactly; the message says how to fix it."""


@dataclass(frozen=True)
class Policy:
    text: str                    # as given, normalised: "none", "zero", "10%/day", "10%/day,max=50%"
    per_day: float = 0.0         # share of the earned points taken per late day
    cap: float = 1.0             # the largest share taken
    zero: bool = False

    def share(self, days: int) -> float:
        """The share of the earned points a submission ``days`` late loses."""
        if days <= 0:
            return 0.0
        if self.zero:
            return 1.0
        return min(self.per_day * days, self.cap, 1.0)


def parse_time(text: str, what: str) -> datetime:
    """An ISO 8601 time with a timezone; ``what`` names it in the error ("--deadline", "submissions.csv, row 3")."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise LateError(f"{what}: {text!r} is not an ISO 8601 time; write it like 2026-03-01T23:59:00+01:00 "
                        "or 2026-03-01T23:59:00Z") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise LateError(f"{what}: {text!r} has no timezone, so it would be read in this machine's zone; add one, "
                        f"like {value if 'T' in value else value + 'T23:59:00'}+01:00 or ...Z for UTC")
    return parsed


def parse_deadline(text: str) -> datetime:
    return parse_time(text, "--deadline")


_PERCENT = r"(\d+(?:\.\d+)?)%"


def parse_policy(text: str) -> Policy:
    """``none``, ``zero``, ``P%/day`` or ``P%/day,max=C%``; anything else is refused."""
    value = text.strip()
    if value in ("none", "zero"):
        return Policy(value, zero=value == "zero")
    match = re.fullmatch(_PERCENT + r"/day(?:,max=" + _PERCENT + ")?", value)
    if not match:
        raise LateError(f"--late-policy must be {POLICY_FORMS}, not {text!r}")
    per_day, cap = float(match[1]), float(match[2]) if match[2] else 100.0
    if not 0 < per_day <= 100 or not 0 < cap <= 100:
        raise LateError(f"--late-policy {text!r}: the percentages must be above 0 and at most 100")
    return Policy(value, per_day / 100, cap / 100)


def late_days(submitted: datetime, deadline: datetime) -> int:
    """Whole days late, rounded up: 0 up to and at the deadline, 1 from one second after it."""
    late = submitted - deadline
    return 0 if late <= timedelta(0) else -((-late) // DAY)


def penalty(points: float, days: int, policy: Policy) -> float:
    """The points taken off ``points`` (what was earned) for ``days`` late."""
    return round(points * policy.share(days), 6)


@dataclass(frozen=True)
class Submitted:
    at: datetime
    source: str      # FROM_MANIFEST or FROM_MTIME


@dataclass
class Late:
    """What grading decided about lateness: the deadline, the policy and each student's submission time."""

    deadline: datetime
    policy: Policy
    submitted: dict[str, Submitted] = field(default_factory=dict)

    def days(self, student: str) -> int | None:
        entry = self.submitted.get(student)
        return None if entry is None else late_days(entry.at, self.deadline)

    def cells(self, student: str, total: float | None) -> list[str]:
        """The grades.csv cells ``COLUMNS`` for ``student`` whose total (before lateness) is ``total``."""
        entry, days = self.submitted.get(student), self.days(student)
        if entry is None:
            return ["unknown", "", "", "not graded" if total is None else "unknown"]
        if total is None:
            return [_iso(entry.at), str(days), "", "not graded"]
        taken = penalty(total, days, self.policy)
        return [_iso(entry.at), str(days), f"{taken:g}", f"{round(total - taken, 6):g}"]

    def to_json(self) -> dict:
        return {"deadline": _iso(self.deadline), "policy": self.policy.text,
                "submitted": {s: {"at": _iso(e.at), "from": e.source} for s, e in sorted(self.submitted.items())}}

    @classmethod
    def from_json(cls, data: dict) -> "Late":
        return cls(parse_deadline(data["deadline"]), parse_policy(data["policy"]),
                   {s: Submitted(parse_time(e["at"], f"{LATE_FILE}, {s}"), e["from"]) for s, e in data["submitted"].items()})


def _iso(moment: datetime) -> str:
    return moment.isoformat()


# --------------------------------------------------------------------------- the manifest

def _norm(path: Path) -> Path:
    """An absolute path without ``..``, links not followed (a linked submission is never read)."""
    return Path(os.path.normpath(os.path.abspath(path)))


def read_manifest(path: Path, files: dict[Path, str]) -> dict[str, datetime]:
    """Student → submission time from ``path`` (``submissions.csv``); ``files``: each collected notebook's
    path → the name the grader gives it. Every row must name one of those files, once, with that name."""
    try:
        text = path.read_text(encoding="utf-8-sig")   # a spreadsheet's export may start with a BOM
    except (OSError, UnicodeDecodeError) as error:
        raise LateError(f"{path}: cannot be read as UTF-8 text ({error})") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise LateError(f"{path} is empty; its first row must be: {','.join(MANIFEST_COLUMNS)}")
    header = [name.strip() for name in rows[0]]
    unknown = [name for name in header if name not in MANIFEST_COLUMNS]
    missing = [name for name in MANIFEST_COLUMNS if name not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise LateError(f"{path}, row 1: the columns must be exactly {', '.join(MANIFEST_COLUMNS)} "
                        f"(unknown: {unknown or 'none'}, missing: {missing or 'none'}); rename or delete columns")
    folder = path.parent
    by_file = {_norm(p): name for p, name in files.items()}
    times: dict[str, datetime] = {}
    seen_files: dict[Path, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        here = f"{path}, row {number}"
        if len(row) != len(header):
            raise LateError(f"{here}: {len(row)} cells, the header has {len(header)}; quote a cell that holds a comma")
        entry = {name: cell.strip() for name, cell in zip(header, row)}
        if not entry["file"]:
            raise LateError(f"{here}: no file; give the notebook's file name relative to {folder}")
        target = _norm(folder / entry["file"])
        if target not in by_file:
            raise LateError(f"{here}: {entry['file']!r} is not a submission in {folder}; fix the name or delete the row")
        if target in seen_files:
            raise LateError(f"{here}: {entry['file']!r} is listed again (first on row {seen_files[target]}); keep one row")
        seen_files[target] = number
        name = by_file[target]
        if entry["student"] != name:
            raise LateError(f"{here}: student {entry['student']!r}, but the grader names {entry['file']!r} {name!r} "
                            f"(its file name, made plain); write {name!r}")
        times[name] = parse_time(entry["submitted_at"], f"{here}, submitted_at")
    return times


def submission_times(students: dict[str, Path], submissions: list[Path]) -> tuple[dict[str, Submitted], list[str]]:
    """Each student's submission time, and a warning for every one taken from the file's modification time."""
    names = {path: name for name, path in students.items()}
    found: dict[str, Submitted] = {}
    for item in submissions:
        manifest = Path(item) / MANIFEST
        if Path(item).is_dir() and manifest.is_file():
            inside = {p: n for p, n in names.items() if _norm(item) in _norm(p).parents}
            for name, moment in read_manifest(manifest, inside).items():
                found[name] = Submitted(moment, FROM_MANIFEST)
    warnings = []
    for name, path in sorted(students.items()):
        if name in found:
            continue
        try:
            moment = datetime.fromtimestamp(path.lstat().st_mtime, timezone.utc)
        except OSError:
            warnings.append(f"{name}: no submission time in a {MANIFEST} and the file cannot be read: lateness unknown")
            continue
        found[name] = Submitted(moment, FROM_MTIME)
        warnings.append(f"{name}: no row in a {MANIFEST}: used the file's modification time, {_iso(moment)} "
                        "(copying or unzipping may have changed it)")
    return found, warnings


def for_class(deadline: str, policy: str, submissions: list[Path]) -> tuple[Late, list[str]]:
    """The flags and the class's submission times (names as ``grade.collect`` gives them), with warnings."""
    from .grade import collect

    rules = parse_deadline(deadline), parse_policy(policy)
    times, warnings = submission_times(collect(submissions), submissions)
    return Late(*rules, times), warnings


# --------------------------------------------------------------------------- kept in OUT

def save(late: Late | None, out: Path, key: bytes) -> None:
    """``OUT/.grader/late.json``, signed; removed when ``late`` is None (grading without --deadline)."""
    path = out / LATE_FILE
    if late is None:
        path.unlink(missing_ok=True)
        return
    body = late.to_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**body, "hmac": keys.signature(body, key)}, indent=2, sort_keys=True))


def load(out: Path, key: bytes) -> Late | None:
    """What ``save`` kept, or None when grading had no deadline; refused when it was changed."""
    path = out / LATE_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        body = {k: v for k, v in data.items() if k != "hmac"}
    except (ValueError, AttributeError):
        raise LateError(f"{path} is not what grade wrote; grade again with --deadline") from None
    if not keys.signed_by(body, data.get("hmac"), key):
        raise LateError(f"{path} does not verify under the grader key (it was changed after grading); "
                        "grade again with --deadline and --late-policy")
    return Late.from_json(body)
