"""The judge side of a hidden test: runs in the trusted grader process, never in a sandbox.

A judge cell defines ``inputs(rng)`` (optional: the grading run's inputs, from a ``random.Random``
seeded by the run's secret key) and ``judge(inputs, out)``, which builds the reference itself and
asserts. ``out`` gives the probe's exported data through typed getters that refuse anything but the
exact type asked for. Nothing the student's run wrote is imported or unpickled: JSON and safetensors only.
"""

from __future__ import annotations

import json
import math
import random
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from .cells import Test
from .probe import EXPORTS, INPUTS, load_weights  # noqa: F401  (judges use load_weights on the reference)

EXPORT_CAP = 8 * 1024 * 1024   # bytes per exported file; a larger one is refused unread
TENSOR_DTYPES = {torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
                 torch.bool, torch.uint8}


class Mismatch(AssertionError):
    """The exported data is missing or not of the type the judge asked for."""


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate keys")
    return dict(pairs)


def _read_capped(path: Path) -> bytes:
    if path.is_symlink() or not path.is_file():
        raise Mismatch(f"{path.name} is not a plain file")
    with open(path, "rb") as f:
        data = f.read(EXPORT_CAP + 1)
    if len(data) > EXPORT_CAP:
        raise Mismatch(f"{path.name} is larger than {EXPORT_CAP} bytes")
    return data


class Exported:
    """What one probe exported, loaded with exact type checks."""

    def __init__(self, folder: Path, key: str):
        self.key = key
        values = folder / f"{key}.json"
        if not values.exists():
            raise Mismatch("the probe exported nothing (the answer raised, or the run stopped before it)")
        try:
            self.values = json.loads(_read_capped(values), object_pairs_hook=_no_duplicates)
        except ValueError as error:
            raise Mismatch(f"invalid JSON export: {error}") from None
        if type(self.values) is not dict:
            raise Mismatch("the JSON export is not an object")
        self.tensors: dict[str, torch.Tensor] = {}
        tensors = folder / f"{key}.safetensors"
        if tensors.exists():
            from safetensors.torch import load
            try:
                self.tensors = load(_read_capped(tensors))
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
        exec(compile(test.judge, f"<judge {test.key}>", "exec"), namespace)  # instructor code, trusted
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

    def __call__(self, work: Path) -> Verdict:
        try:
            out = Exported(work / EXPORTS, self.test.key)
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
