"""The judge side of a hidden test: runs in the trusted grader process, never in a sandbox.

A judge cell defines ``inputs(rng)`` (optional: the grading run's inputs, from a ``random.Random``
seeded by the run's secret key) and ``judge(inputs, out)``, which builds the reference itself and
asserts. ``out`` gives the probe's exported data through typed getters that refuse anything but the
exact type asked for. Nothing the student's run wrote is imported or unpickled: JSON and safetensors only.

Every exported file is hostile input, read once the run is over: never through a symbolic link (the
file or the exports folder), never from a FIFO or device, at most ``EXPORT_CAP`` bytes; JSON without
NaN or Infinity, duplicate keys or nesting deeper than ``JSON_DEPTH``; safetensors whose header must
describe exactly the bytes that follow. Any of these is a ``Mismatch`` (the test fails), never a crash
or a stall of the batch.
"""

from __future__ import annotations

import json
import math
import os
import random
import stat
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from .cells import Test
from .probe import EXPORTS, INPUTS, load_weights  # noqa: F401  (judges use load_weights on the reference)

EXPORT_CAP = 8 * 1024 * 1024   # bytes per exported file; a larger one is refused unread
JSON_DEPTH = 32                # nesting of an exported JSON value; no probe exports deeper data
TENSOR_DTYPES = {torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
                 torch.bool, torch.uint8}


class Mismatch(AssertionError):
    """The exported data is missing or not of the type the judge asked for."""


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate keys")
    return dict(pairs)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):   # 1e999 parses as infinity
        raise ValueError(f"{text[:20]} is not a finite number")
    return value


def _depth(text: bytes) -> int:
    """The deepest nesting of brackets outside strings: checked before parsing, so that deep data is
    refused in linear time instead of reaching Python's recursion limit."""
    depth = deepest = 0
    inside = escaped = False
    for byte in text:
        if inside:
            if escaped:
                escaped = False
            elif byte == 0x5C:      # backslash
                escaped = True
            elif byte == 0x22:      # quote
                inside = False
        elif byte == 0x22:
            inside = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def parse_json(data: bytes):
    """Strict JSON: UTF-8, no NaN or Infinity, no duplicate keys, at most ``JSON_DEPTH`` deep."""
    if data.count(b"[") + data.count(b"{") > JSON_DEPTH and _depth(data) > JSON_DEPTH:
        raise ValueError(f"nested deeper than {JSON_DEPTH}")
    return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant,
                      parse_float=_finite_float)


def open_regular(path: Path):
    """``path`` opened for reading only while it is a regular file: no link followed, no FIFO waited on
    (O_NONBLOCK), and fstat checked on the open file, so nothing can be swapped in between."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path.name} is not a regular file")
    return os.fdopen(fd, "rb")


def _read_capped(path: Path) -> bytes:
    """The file's bytes, if it is a regular file reached without a symbolic link and not too large."""
    try:
        with open_regular(path) as f:
            data = f.read(EXPORT_CAP + 1)
    except OSError:
        raise Mismatch(f"{path.name} is not a plain file") from None
    if len(data) > EXPORT_CAP:
        raise Mismatch(f"{path.name} is larger than {EXPORT_CAP} bytes")
    return data


def _exports_folder(folder: Path) -> Path:
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise Mismatch("the exports folder was replaced by something else (a link or a file)")
    return folder


JSON, TENSORS = ".json", ".safetensors"   # what one probe may export: values and tensors


def capture(folder: Path, key: str) -> dict[str, bytes | str | None]:
    """What the probe of test ``key`` left in ``folder``, read once as hostile input: per suffix (``JSON``,
    ``TENSORS``) its bytes, None when there is no such file, or (a str) why it cannot be read. Judging
    reads only this, so that judging it again later (``rejudge``) gives the same verdict as grading."""
    try:
        folder = _exports_folder(folder)
    except Mismatch as error:
        return {JSON: str(error), TENSORS: None}
    captured: dict[str, bytes | str | None] = {}
    for suffix in (JSON, TENSORS):
        path = folder / f"{key}{suffix}"
        if not path.exists() and not path.is_symlink():
            captured[suffix] = None
            continue
        try:
            captured[suffix] = _read_capped(path)
        except Mismatch as error:
            captured[suffix] = str(error)
    return captured


class Exported:
    """What one probe exported (as ``capture`` read it), loaded with exact type checks."""

    def __init__(self, captured: dict[str, bytes | str | None], key: str):
        self.key = key
        values = captured.get(JSON)
        if values is None:
            raise Mismatch("the probe exported nothing (the answer raised, or the run stopped before it)")
        if isinstance(values, str):
            raise Mismatch(values)
        try:
            self.values = parse_json(values)
        except (ValueError, RecursionError) as error:   # UnicodeDecodeError is a ValueError
            raise Mismatch(f"invalid JSON export: {str(error)[:200]}") from None
        if type(self.values) is not dict:
            raise Mismatch("the JSON export is not an object")
        self.tensors: dict[str, torch.Tensor] = {}
        tensors = captured.get(TENSORS)
        if isinstance(tensors, str):
            raise Mismatch(tensors)
        if tensors is not None:
            from safetensors.torch import load
            try:
                self.tensors = load(tensors)
            except Exception as error:  # malformed header or data
                raise Mismatch(f"invalid safetensors export: {type(error).__name__}") from None

    def _get(self, name: str):
        if name not in self.values:
            raise Mismatch(f"no value {name!r} exported")
        return self.values[name]

    def tensor(self, name: str, shape: tuple[int, ...] | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        if name not in self.tensors:
            raise Mismatch(f"no tensor {name!r} exported")
        t = self.tensors[name]
        if type(t) is not torch.Tensor or t.dtype not in TENSOR_DTYPES:
            raise Mismatch(f"{name}: not a plain tensor")
        if shape is not None and tuple(t.shape) != tuple(shape):
            raise Mismatch(f"{name}: shape {tuple(t.shape)}, expected {tuple(shape)}")
        if dtype is not None and t.dtype != dtype:
            raise Mismatch(f"{name}: dtype {t.dtype}, expected {dtype}")
        return t

    def int(self, name: str) -> int:
        value = self._get(name)
        if type(value) is not int:
            raise Mismatch(f"{name}: {type(value).__name__}, expected int")
        return value

    def float(self, name: str) -> float:
        value = self._get(name)
        if type(value) is not float or not math.isfinite(value):
            raise Mismatch(f"{name}: expected a finite float, got {type(value).__name__}")
        return value

    def list(self, name: str, of: type, length: int | None = None) -> list:
        value = self._get(name)
        if type(value) is not list or any(type(v) is not of for v in value):
            raise Mismatch(f"{name}: expected a list of {of.__name__}")
        if length is not None and len(value) != length:
            raise Mismatch(f"{name}: {len(value)} items, expected {length}")
        return value


@dataclass
class Verdict:
    passed: bool
    detail: str = ""   # for the instructor's results file only: it may quote inputs, never shown to students


class Judge:
    """One test's judge, compiled once per grading run, with that run's inputs."""

    def __init__(self, test: Test, seed: int):
        self.test = test
        namespace: dict = {"__name__": f"judge_{test.question}_{test.name}"}
        if test.judge_setup:   # the question's setup for judges, then the judge, in one namespace of its own
            exec(compile(test.judge_setup, f"<setup {test.question}>", "exec"), namespace)  # instructor code, trusted
        exec(compile(test.judge, f"<judge {test.key}>", "exec"), namespace)
        self._judge = namespace["judge"]
        make = namespace.get("inputs")
        self.inputs: dict = make(random.Random(seed)) if make else {}
        if type(self.inputs) is not dict or not all(type(k) is str for k in self.inputs):
            raise TypeError(f"inputs() of {test.key} must return a dict with str keys")
        # Serialised once: every student of the run gets the same bytes.
        tensors = {k: v.contiguous() for k, v in self.inputs.items() if isinstance(v, torch.Tensor)}
        self._files = {".json": json.dumps({k: v for k, v in self.inputs.items() if k not in tensors}).encode()}
        if tensors:
            from safetensors.torch import save
            self._files[".safetensors"] = save(tensors)

    def write_inputs(self, work: Path) -> None:
        """Put this run's inputs where the probe reads them (the sandbox's work folder)."""
        folder = work / INPUTS
        folder.mkdir(exist_ok=True)
        for suffix, data in self._files.items():
            (folder / f"{self.test.key}{suffix}").write_bytes(data)

    @property
    def input_files(self) -> dict[str, bytes]:
        """This run's inputs as the probe reads them (suffix → bytes): the same for every student."""
        return dict(self._files)

    def __call__(self, work: Path) -> Verdict:
        return self.verdict(capture(work / EXPORTS, self.test.key))

    def verdict(self, captured: dict[str, bytes | str | None]) -> Verdict:
        """The verdict on what ``capture`` read of this test's exports."""
        try:
            out = Exported(captured, self.test.key)
            result = self._judge(self.inputs, out)
        except Mismatch as error:
            return Verdict(False, f"export: {error}")
        except AssertionError as error:
            line = traceback.extract_tb(error.__traceback__)[-1].line
            return Verdict(False, f"assertion: {str(error)[:300] or line}")
        except Exception as error:  # the student's data made the reference code fail
            return Verdict(False, f"{type(error).__name__}: {str(error)[:300]}")
        if result is False:
            return Verdict(False, "judge returned False")
        return Verdict(True)


def random_weights(model: torch.nn.Module, rng: random.Random, prefix: str = "w") -> dict[str, torch.Tensor]:
    """Seeded random values for every tensor of ``model``'s state dict, named ``w000, w001, ...``.

    Scaled so that activations stay of order one; BN running variances and scales are positive, so
    that a model that skips a normalisation step computes something visibly different."""
    generator = torch.Generator().manual_seed(rng.getrandbits(63))
    weights = {}
    for index, (name, tensor) in enumerate(model.state_dict().items()):
        if not tensor.is_floating_point():
            value = torch.zeros_like(tensor)
        elif name.endswith("running_var"):
            value = torch.rand(tensor.shape, generator=generator) * 1.5 + 0.5
        elif tensor.dim() == 1 and name.endswith("weight"):
            value = torch.rand(tensor.shape, generator=generator) + 0.5
        elif tensor.dim() == 1:
            value = (torch.rand(tensor.shape, generator=generator) - 0.5) / 10
        else:   # He scaling: deep ReLU stacks keep their signal, so the output depends on the input
            fan_in = tensor[0].numel()
            value = torch.randn(tensor.shape, generator=generator) * math.sqrt(2 / fan_in)
        weights[f"{prefix}{index:03d}"] = value.to(tensor.dtype)
    return weights


def tensor_seed(rng: random.Random) -> torch.Generator:
    """A torch generator seeded from the run's ``rng``, for inputs such as images."""
    return torch.Generator().manual_seed(rng.getrandbits(63))
