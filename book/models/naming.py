"""Caffe-style layer names (conv1, relu1, pool1, fc6), the helpers of each model's
``layer_names`` method.

Names are derived from the module structure (counting convolutions, pools and blocks in
order), never from a list of indices, so they follow the code when a configuration
changes.
"""

from __future__ import annotations

from torch import nn

_WEIGHTED = (nn.Conv2d, nn.Linear)
_KINDS = ((nn.ReLU, "relu"), (nn.GELU, "gelu"), (nn.Tanh, "tanh"),
          (nn.LocalResponseNorm, "norm"), (nn.BatchNorm2d, "bn"), (nn.LayerNorm, "ln"),
          (nn.Dropout, "drop"), (nn.Identity, "identity"),
          ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), "avgpool"),
          ((nn.MaxPool2d, nn.AvgPool2d), "pool"), (nn.Flatten, "flatten"))


def kind(module: nn.Module) -> str:
    """A short Caffe-style word for a layer without weights: relu, norm, pool, drop, …"""
    for types, word in _KINDS:
        if isinstance(module, types):
            return word
    return type(module).__name__.lower()


def weighted(module: nn.Module) -> nn.Module | None:
    """The one convolution or linear layer that ``module`` is (or wraps, as conv+BN+ReLU
    does), else None."""
    found = [m for m in module.modules() if isinstance(m, _WEIGHTED)]
    return found[0] if len(found) == 1 else None


def caffe(children: list[tuple[str, nn.Module]], start: int = 0) -> dict[str, str]:
    """AlexNet's Caffe names for a sequence: conv1, relu1, norm1, pool1, conv2, …, fc6,
    relu6, drop6, fc7.

    Convolutions and linear layers share one counter; a layer without weights takes the
    number of the weighted layer before it. Other blocks are "block 1", "block 2", ….
    """
    names, n, blocks = {}, start, 0
    for key, module in children:
        layer = weighted(module)
        if layer is not None:
            n += 1
            name = f"{'fc' if isinstance(layer, nn.Linear) else 'conv'}{n}"
        elif next(module.children(), None) is None:
            name = kind(module) + (
                str(n) if n and kind(module) not in ("flatten", "avgpool") else "")
        else:
            blocks += 1
            name = f"block {blocks}"
        names[key] = name if name not in names.values() else f"{name} ({key})"
    return names


def numbered(names: dict[str, str]) -> dict[str, str]:
    """Make names unique by numbering repeats: drop, drop → drop1, drop2."""
    counts = {v: sum(1 for w in names.values() if w == v) for v in names.values()}
    seen: dict[str, int] = {}
    out = {}
    for k, v in names.items():
        if counts[v] > 1:
            seen[v] = seen.get(v, 0) + 1
            v = f"{v}{seen[v]}"
        out[k] = v
    return out
