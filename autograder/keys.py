"""The grader key: one secret per class that signs every result and seeds every judge's inputs.

It lives in ``OUT/.grader/key`` (mode 600), where no sandbox can see it. Shards of one class on several
machines share one key file (``python -m autograder key FILE``); its fingerprint names it in a shard's
manifest without revealing it. A result is signed with an HMAC over its canonical JSON, so an edited
result does not verify and is graded again (``result.py`` signs and checks Results with these).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from .cells import FormatError

KEY_BYTES = 32   # anything shorter would make signatures forgeable


def _write_new_key(path: Path, key: bytes) -> None:
    """``key`` as hex in ``path``, created with mode 600 and never over an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())


def new_key_file(path: Path) -> None:
    """A fresh secret in ``path`` (mode 600), never overwriting one: ``python -m autograder key FILE``."""
    _write_new_key(path, secrets.token_bytes(KEY_BYTES))


def read_key(path: Path) -> bytes:
    """A key of exactly ``KEY_BYTES`` bytes (64 hex digits)."""
    try:
        key = bytes.fromhex(Path(path).read_text().strip())
    except FileNotFoundError:
        raise FileNotFoundError(f"no grader key at {path}; make one with: python -m autograder key {path}") from None
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise FormatError(f"{path} is not a grader key (64 hex digits); make one with: "
                          "python -m autograder key NEWFILE")
    return key


def key_fingerprint(key: bytes) -> str:
    """Names a key without revealing it: shards graded with different keys cannot be merged."""
    return hashlib.sha256(b"autograder key fingerprint:" + key).hexdigest()[:16]


def grader_key(out: Path, key_file: Path | None = None) -> bytes:
    """The run's secret, kept in ``out``, which no sandbox sees: made there on the first run.

    With ``key_file`` (shards on several machines share one), that key is used and copied into ``out``."""
    if key_file is not None:
        return store_key(out, read_key(key_file))
    path = out / ".grader" / "key"
    if not path.exists():
        store_key(out, secrets.token_bytes(KEY_BYTES))
    return read_key(path)


def store_key(out: Path, key: bytes) -> bytes:
    """Keep ``key`` in ``out/.grader/key`` (mode 600); refuse a folder already graded with another."""
    folder = out / ".grader"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / "key"
    if path.exists():
        if read_key(path) != key:
            raise FormatError(f"{out} was graded with another grader key: use a new --out folder")
        return key
    _write_new_key(path, key)
    return key


def seed_for(key: bytes, test_key: str) -> int:
    """The seed of one test's inputs (``"q1.shape"``): fresh for every key, the same for every student."""
    return int.from_bytes(hmac.new(key, f"inputs:{test_key}".encode(), hashlib.sha256).digest()[:8], "big")


def signature(body: dict, key: bytes) -> str:
    """The HMAC of ``body`` as canonical JSON (sorted keys)."""
    return hmac.new(key, json.dumps(body, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def signed_by(body: dict, claimed: object, key: bytes) -> bool:
    """Whether ``claimed`` is ``body``'s signature under ``key`` (compared in constant time)."""
    return isinstance(claimed, str) and hmac.compare_digest(claimed, signature(body, key))
