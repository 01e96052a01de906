"""``python -m autograder merge SHARD_DIR... --out DIR``: one class's shards back into one set of grades.

Each shard folder comes from ``grade --shard i/n --key FILE``. Merging refuses, naming the folder:
a folder without ``shard.json``; shards of different homework versions (source hashes), grader keys or
result versions; a missing, repeated or foreign shard index; a student in two shards; and a result
whose signature does not verify under the shared key, or a class that changed between shards (its
fingerprint is in every ``shard.json``). Nothing is written until every check passes, and only into an
empty folder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import late as late_work
from . import report, stored
from .cells import FormatError
from .grade import _safe
from .keys import key_fingerprint, read_key, store_key
from .result import RESULT_VERSION, Result, ResultError, Unverified, read


@dataclass(frozen=True)
class QuestionPoints:
    """What the summary needs of a question: its id, its points and whether it is graded by hand
    (from the shard's manifest: ``[id, points]``, or ``[id, points, "manual"]`` for a written question)."""

    id: str
    points: float
    manual: bool = False


FIELDS = ("homework", "source_sha256", "key", "shard", "students", "class", "version", "questions")


def _manifest(folder: Path) -> dict:
    path = folder / "shard.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise FormatError(f"{folder} is not a shard folder (no shard.json); grade it with --shard i/n --key FILE") from None
    except ValueError as error:
        raise FormatError(f"{path} is not valid JSON ({error}); grade that shard again") from None
    missing = [name for name in FIELDS if name not in manifest] if isinstance(manifest, dict) else list(FIELDS)
    if missing:
        raise FormatError(f"{path} lacks {', '.join(missing)}: grade that shard again with this version")
    if manifest["version"] != RESULT_VERSION:   # its results would be misread: they are graded again instead
        raise FormatError(f"{path} holds results of version {manifest['version']}, this grader reads version "
                          f"{RESULT_VERSION}: grade that shard again with this version")
    shapes = manifest["questions"] if isinstance(manifest["questions"], list) else [None]
    if not all(isinstance(e, list) and len(e) in (2, 3) and isinstance(e[0], str)
               and isinstance(e[1], (int, float)) and not isinstance(e[1], bool) and e[2:] in ([], ["manual"])
               for e in shapes):
        raise FormatError(f"{path}: questions must be [id, points] or [id, points, \"manual\"]; grade that shard again")
    unsafe = [name for name in manifest["students"] if not isinstance(name, str) or _safe(name) != name]
    if unsafe:
        raise FormatError(f"{path} names students that are not plain file names: {unsafe[:3]}")
    return manifest


def _same(manifests: dict[Path, dict], field: str, what: str) -> None:
    values = {folder: m.get(field) for folder, m in manifests.items()}
    if len({json.dumps(v, sort_keys=True) for v in values.values()}) > 1:
        listing = "; ".join(f"{folder}: {value}" for folder, value in values.items())
        raise FormatError(f"the shards have different {what}, so they cannot be merged ({listing})")


def merge(folders: list[Path], out: Path) -> list[Result]:
    """Check every shard, then write results/, feedback/, grades.csv, summary.json and histogram.png to ``out``."""
    folders = [Path(f) for f in folders]
    manifests = {folder: _manifest(folder) for folder in folders}
    _same(manifests, "homework", "homework")
    _same(manifests, "source_sha256", "homework versions (instructor notebooks)")
    _same(manifests, "key", "grader keys")
    _same(manifests, "version", "result versions")
    _same(manifests, "questions", "questions")
    _same(manifests, "class", "classes (a submission was added or removed between shards: grade every shard again)")
    counts = {m["shard"][1] for m in manifests.values()}
    if len(counts) > 1:
        raise FormatError(f"the shards split the class in different numbers of parts: {sorted(counts)}")
    count = counts.pop()
    indexes = sorted(m["shard"][0] for m in manifests.values())
    if indexes != list(range(count)):
        missing = sorted(set(range(count)) - set(indexes))
        repeated = sorted({i for i in indexes if indexes.count(i) > 1})
        raise FormatError(f"shards of {count}: missing {missing or 'none'}, repeated {repeated or 'none'}; "
                          "give each shard folder exactly once")

    keys = {folder: read_key(folder / ".grader" / "key") for folder in folders}
    results: dict[str, tuple[Path, Result]] = {}
    for folder, manifest in manifests.items():
        key = keys[folder]
        if key_fingerprint(key) != manifest["key"]:
            raise FormatError(f"{folder}/.grader/key is not the key its shard.json names")
        for student in manifest["students"]:
            if student in results:
                raise FormatError(f"{student} is in two shards: {results[student][0]} and {folder}")
            path = folder / "results" / f"{student}.json"
            again = f"grade shard {manifest['shard'][0]} again"
            try:
                result = read(path, key)
            except Unverified:
                result = None
            except ResultError as error:   # missing, unreadable, or of another version
                raise FormatError(f"{path}: {error}; {again}") from None
            if result is None or result.source_sha256 != manifest["source_sha256"] or result.student != student:
                raise FormatError(f"{path} does not verify under the shards' key: it was changed after grading; {again}")
            if not (folder / "feedback" / f"{student}.md").is_file():
                raise FormatError(f"{folder}/feedback/{student}.md is missing; {again}")
            results[student] = (folder, result)
    count = next(iter(manifests.values()))["class"]["students"]
    if len(results) != count:
        raise FormatError(f"the shards hold {len(results)} students but the class has {count}; grade every shard again")
    if out.exists() and any(out.iterdir()):
        raise FormatError(f"{out} is not empty: merge into a new folder")

    lates = {folder: late_work.load(folder, keys[folder]) for folder in folders}
    rules = {(x.deadline, x.policy) if x else None for x in lates.values()}
    if len(rules) > 1:
        raise FormatError("the shards were graded with different --deadline or --late-policy: grade them alike")

    out.mkdir(parents=True, exist_ok=True)
    key = store_key(out, next(iter(keys.values())))  # the merged folder keeps the key: its results verify later
    ordered = [result for _, (_, result) in sorted(results.items())]
    for folder, result in results.values():
        report.write_student(result, out)  # the same bytes grading wrote: JSON and feedback come from the result
        kept = folder / stored.EXPORTS_DIR / result.student    # rejudge reads them
        if kept.is_dir():
            shutil.copytree(kept, out / stored.EXPORTS_DIR / result.student, symlinks=True)
    first = folders[0]
    if (first / ".grader" / "self-check.json").is_file() and (first / stored.SELF_CHECK_EXPORTS).is_dir():
        shutil.copy2(first / ".grader" / "self-check.json", out / ".grader" / "self-check.json")
        shutil.copytree(first / stored.SELF_CHECK_EXPORTS, out / stored.SELF_CHECK_EXPORTS, symlinks=True)
    late = None
    if rules != {None}:
        late = next(iter(lates.values()))
        late = late_work.Late(late.deadline, late.policy, {s: t for x in lates.values() for s, t in x.submitted.items()})
        late_work.save(late, out, key)
    questions = [QuestionPoints(entry[0], entry[1], entry[2:] == ["manual"])
                 for entry in next(iter(manifests.values()))["questions"]]
    report.write_summary(ordered, questions, out, late=late)
    return ordered
