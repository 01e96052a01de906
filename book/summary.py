"""Parameter and multiply-add counts measured by torch's FlopCounterMode, never by
hand-written formulas."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from .models import naming


def _attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# Attention on the CPU runs as an op FlopCounterMode has no formula for, so it would
# count as zero: give it the count torch uses for the same op on a GPU (the two matmuls
# QKᵀ and AV; softmax is not counted).
_CPU_ATTENTION = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops}


def _example(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else "cpu"
    return torch.zeros(input_shape, device=device)


def _measure(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[FlopCounterMode, dict[str, tuple]]:
    """Run one forward pass in eval mode under FlopCounterMode, recording every module's
    output shape."""
    shapes: dict[str, tuple] = {}
    names = {module: name for name, module in model.named_modules()}

    def record(module, _inputs, output):
        out = output[0] if isinstance(output, (tuple, list)) else output
        shapes.setdefault(names[module], tuple(out.shape) if isinstance(out, torch.Tensor) else ())

    hooks = [m.register_forward_hook(record) for m in model.modules()]
    was_training = model.training
    model.eval()  # one path through the network: no auxiliary heads, no dropout
    # In eval mode nn.MultiheadAttention takes a fused "fast path" that FlopCounterMode
    # cannot see into (ViT-B/16 would lose a third of its multiply-adds); the ordinary
    # path counts every projection.
    fast_path = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), FlopCounterMode(display=False, depth=None, custom_mapping=_CPU_ATTENTION) as counter:
            model(_example(model, input_shape))
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return counter, shapes


def count(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """{"params": learnable parameters, "macs": multiply-adds of one forward pass of
    ``input_shape``}.

    FlopCounterMode counts a multiply-add as two FLOPs, so MACs are half its total.
    """
    counter, _ = _measure(model, input_shape)
    return _totals(model, counter)


def _totals(model: nn.Module, counter: FlopCounterMode) -> dict[str, int]:
    return {"params": sum(p.numel() for p in model.parameters()), "macs": counter.get_total_flops() // 2}


@dataclass
class Table:
    """Rows of a table, shown as text in a terminal and as HTML in a notebook."""

    columns: list[str]
    rows: list[list] = field(default_factory=list)
    title: str = ""
    aliases: dict[str, int] = field(default_factory=dict, repr=False)  # other keys of rows: module paths

    @staticmethod
    def _cell(value) -> str:
        if isinstance(value, float):
            return f"{value:,.4g}" if abs(value) < 100 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return "" if value is None else str(value)

    def __str__(self) -> str:
        cells = [self.columns] + [[self._cell(v) for v in row] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                 for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(([self.title] if self.title else []) + lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{self._cell(v)}</td>" for v in row) + "</tr>" for row in self.rows)
        caption = f"<caption>{self.title}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def column(self, name: str) -> list:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def row(self, first: str) -> list:
        """The row whose first cell is ``first``, or whose module path (``features.0``)
        is ``first``."""
        for row in self.rows:
            if row[0] == first:
                return row
        if first in self.aliases:
            return self.rows[self.aliases[first]]
        raise KeyError(first)


def layer_names(model: nn.Module) -> dict[str, str]:
    """{module path: paper-style name} for every submodule, e.g. {"features.0": "conv1",
    "classifier.1": "fc6"}.

    Each architecture of ``book.models`` gets its paper's names (AlexNet conv1…fc8, VGG
    conv3_2 and pool3, NiN mlpconv1, GoogLeNet "inception 4a", ResNet "conv3_x block 2",
    DenseNet "dense block 2" and "transition 1", ViT "block 3", CoAtNet "S2"). Inside
    such a module, or in any other model, layers of a sequence are numbered in Caffe's
    style (conv1, relu1, pool1, fc2) and other modules keep their attribute name,
    prefixed by their parent's name ("conv2_x block 1 conv1").
    """
    own = getattr(model, "layer_names", None)  # each architecture of book.models names its own layers
    explicit = own() if callable(own) else {}
    modules = dict(model.named_modules())
    numbered: dict[str, dict[str, str]] = {}  # parent path -> its children's local names
    names: dict[str, str] = {}
    for path, module in modules.items():
        if not path:
            continue
        if path in explicit:
            names[path] = explicit[path]
            continue
        parent, _, key = path.rpartition(".")
        if parent not in numbered:
            children = list(modules[parent].named_children())
            numbered[parent] = naming.caffe(children) if all(k.isdigit() for k, _ in children) else {}
        local = numbered[parent].get(key, key)
        names[path] = f"{names[parent]} {local}" if parent in names else local
    seen = set()
    for path, name in names.items():  # a name that is not unique would make table rows ambiguous
        if name in seen:
            names[path] = path
        seen.add(names[path])
    return names


def paper_name(model: nn.Module, path: str) -> str:
    """The paper-style name of the submodule at ``path`` ("features.0" → "conv1" in AlexNet)."""
    return layer_names(model)[path] if path else type(model).__name__


def layer_table(model: nn.Module, input_shape: tuple[int, ...], depth: int = 1) -> Table:
    """One row per module ``depth`` levels down: name, output shape, parameters, multiply-adds.

    Rows carry the paper's layer names (``layer_names``); ``table.row`` also accepts the
    module path. The last row is the total. Multiply-adds of a module include everything
    inside it.
    """
    counter, shapes = _measure(model, input_shape)
    flops = counter.get_flop_counts()
    display = layer_names(model)
    table = Table(["layer", "output shape", "params", "macs"], title=type(model).__name__)
    for name, module in model.named_modules():
        if not name or name.count(".") != depth - 1:
            continue
        table.aliases[name] = len(table.rows)
        # FlopCounterMode names a module by its path below the root, prefixed with the
        # root's class name.
        macs = sum(flops.get(f"{type(model).__name__}.{name}", {}).values()) // 2
        params = sum(p.numel() for p in module.parameters())
        table.rows.append([display[name], "×".join(map(str, shapes.get(name, ())[1:])), params, macs])
    total = _totals(model, counter)
    table.rows.append(["total", "×".join(map(str, shapes.get("", ())[1:])), total["params"], total["macs"]])
    return table



def paper_comparison(family: str) -> Table:
    """Our measured numbers beside the paper's table for an architecture family
    ("resnet", "vgg", …): the ``paper_table`` of its ``Spec``."""
    from . import models

    tables = {spec.family: spec.paper_table for spec in models.specs() if spec.paper_table is not None}
    if family not in tables:
        raise ValueError(f"family must be one of {', '.join(tables)}, not {family!r}")
    return tables[family]()


def receptive_field(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(height, width) of the input region that one central output value depends on, measured.

    Back-propagate from the centre of the output map and see which input pixels get a gradient,
    instead of trusting the formula r = r_prev + (k − 1)·∏strides.
    """
    # Several random inputs, so that a ReLU that happens to be off cannot hide a pixel.
    x = torch.randn((8, *input_shape[1:]), requires_grad=True)
    was_training = model.training
    model.eval()
    try:
        out = model(x)
    finally:
        model.train(was_training)
    # Every channel at the centre: a single channel can be switched off by its ReLU for all inputs.
    out[:, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    touched = torch.nonzero(x.grad.abs().sum((0, 1)))
    return tuple((touched.max(0).values - touched.min(0).values + 1).tolist())
