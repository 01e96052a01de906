"""The probe side of a hidden test: runs inside the student's sandboxed kernel.

A probe reads the inputs the grader chose for this grading run and exports what the student's answer
returns, as plain data only: tensors through safetensors, numbers and strings as JSON. It decides
nothing: the verdict is the judge's, in the trusted grader process (``judging.py``). A student can
rewrite this module in their kernel; that only changes what they export, which the judge still checks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

INPUTS, EXPORTS = "inputs", "exports"
SCALARS = (int, float, str, bool, type(None))


def _folder(name: str) -> Path:
    return Path(os.environ.get("AUTOGRADER_WORK", ".")) / name


def inputs(key: str) -> dict:
    """The grader's inputs for test ``key``: tensors and JSON values in one dict."""
    values = json.loads((_folder(INPUTS) / f"{key}.json").read_text())
    tensors = _folder(INPUTS) / f"{key}.safetensors"
    if tensors.exists():
        from safetensors.torch import load_file
        values.update(load_file(tensors))
    return values


def plain(value):
    """``value`` as JSON data, or a note naming its type: a custom object never crosses as itself."""
    if type(value) in SCALARS:
        return value
    if type(value) in (list, tuple):
        return [plain(v) for v in value]
    if type(value) is dict and all(type(k) is str for k in value):
        return {k: plain(v) for k, v in value.items()}
    return {"unexportable": f"{type(value).__module__}.{type(value).__qualname__}"}


def export(key: str, **values) -> None:
    """Save the answer's results for the judge of test ``key``: tensors apart, the rest as JSON."""
    import torch

    tensors = {name: v.detach().cpu().contiguous().clone().as_subclass(torch.Tensor)
               for name, v in values.items() if isinstance(v, torch.Tensor)}
    data = {name: plain(v) for name, v in values.items() if name not in tensors}
    folder = _folder(EXPORTS)
    folder.mkdir(exist_ok=True)
    (folder / f"{key}.json").write_text(json.dumps(data))
    if tensors:
        from safetensors.torch import save_file
        save_file(tensors, folder / f"{key}.safetensors")


def load_weights(model, values: dict, prefix: str = "w") -> None:
    """Copy the tensors ``w000, w001, ...`` into ``model``'s state dict in registration order.

    Names may differ from the reference's; shapes must match one by one (the judge does the same)."""
    supplied = [values[k] for k in sorted(k for k in values if k.startswith(prefix) and k[len(prefix):].isdigit())]
    state = model.state_dict()
    if len(state) != len(supplied):
        raise ValueError(f"the model has {len(state)} tensors in its state dict, the reference {len(supplied)}")
    for (name, tensor), value in zip(state.items(), supplied):
        if tuple(tensor.shape) != tuple(value.shape):
            raise ValueError(f"{name}: shape {tuple(tensor.shape)}, the reference's is {tuple(value.shape)}")
    model.load_state_dict(dict(zip(state.keys(), supplied)))
