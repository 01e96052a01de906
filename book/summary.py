"""Parameter and multiply-add counts measured by torch's FlopCounterMode, never by hand-written formulas."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _example(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else "cpu"
    return torch.zeros(input_shape, device=device)


def _measure(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[FlopCounterMode, dict[str, tuple]]:
    """Run one forward pass in eval mode under FlopCounterMode, recording every module's output shape."""
    shapes: dict[str, tuple] = {}
    names = {module: name for name, module in model.named_modules()}

    def record(module, _inputs, output):
        out = output[0] if isinstance(output, (tuple, list)) else output
        shapes.setdefault(names[module], tuple(out.shape) if isinstance(out, torch.Tensor) else ())

    hooks = [m.register_forward_hook(record) for m in model.modules()]
    was_training = model.training
    model.eval()  # one path through the network: no auxiliary heads, no dropout
    try:
        with torch.no_grad(), FlopCounterMode(display=False, depth=None) as counter:
            model(_example(model, input_shape))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return counter, shapes


def count(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """{"params": learnable parameters, "macs": multiply-adds of one forward pass of ``input_shape``}.

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

    @staticmethod
    def _cell(value) -> str:
        if isinstance(value, float):
            return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
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
        """The row whose first cell is ``first``."""
        for row in self.rows:
            if row[0] == first:
                return row
        raise KeyError(first)


def layer_table(model: nn.Module, input_shape: tuple[int, ...], depth: int = 1) -> Table:
    """One row per module ``depth`` levels down: name, output shape, parameters, multiply-adds.

    The last row is the total. Multiply-adds of a module include everything inside it.
    """
    counter, shapes = _measure(model, input_shape)
    flops = counter.get_flop_counts()
    table = Table(["layer", "output shape", "params", "macs"], title=type(model).__name__)
    for name, module in model.named_modules():
        if not name or name.count(".") != depth - 1:
            continue
        # FlopCounterMode names a module by its path below the root, prefixed with the root's class name.
        macs = sum(flops.get(f"{type(model).__name__}.{name}", {}).values()) // 2
        params = sum(p.numel() for p in module.parameters())
        table.rows.append([name, "×".join(map(str, shapes.get(name, ())[1:])), params, macs])
    total = _totals(model, counter)
    table.rows.append(["total", "×".join(map(str, shapes.get("", ())[1:])), total["params"], total["macs"]])
    return table



def paper_comparison(family: str) -> Table:
    """Our measured numbers beside the paper's table, for "alexnet", "vgg", "googlenet", "resnet" or "densenet"."""
    from . import models, papers

    image = (1, 3, 224, 224)
    if family == "alexnet":
        table = Table(["model", "params (ours)", "params (paper)", "macs (ours)"], title="AlexNet, §3 (two towers)")
        ours = count(models.build("alexnet"), image)
        table.rows.append(["alexnet", ours["params"], papers.ALEXNET_PARAMS, ours["macs"]])
    elif family == "vgg":
        table = Table(["config", "model", "params M (ours)", "params M (paper)", "GMACs (ours)"],
                      title="VGG, Table 2: parameters in millions")
        for config, name in papers.VGG_NAMES.items():
            ours = count(models.build(name), image)
            table.rows.append([config, name, round(ours["params"] / 1e6, 1), papers.VGG_PARAMS_M[config],
                               round(ours["macs"] / 1e9, 2)])
    elif family == "googlenet":
        table = Table(["block", "params K (ours)", "params K (paper)", "ops M (ours)", "ops M (paper)"],
                      title="GoogLeNet, Table 1: inception blocks")
        from .models.googlenet import INCEPTION_TABLE
        for block, (params, ops) in papers.GOOGLENET_ROWS.items():
            channels, side = papers.GOOGLENET_INPUT[block]
            ours = count(models.Inception(channels, *INCEPTION_TABLE[block]), (1, channels, side, side))
            table.rows.append([block, round(ours["params"] / 1e3, 1), params / 1e3, round(ours["macs"] / 1e6, 1), ops / 1e6])
    elif family == "resnet":
        table = Table(["model", "GMACs (ours, paper stride)", "GMACs (ours, torchvision stride)", "GMACs (paper)",
                       "params M (ours)"], title="ResNet, Table 1: multiply-adds")
        for name, paper in papers.RESNET_GMACS.items():
            paper_stride = count(models.build(name, stride_on="1x1"), image)
            v15 = count(models.build(name, stride_on="3x3"), image)
            table.rows.append([name, round(paper_stride["macs"] / 1e9, 2), round(v15["macs"] / 1e9, 2), paper,
                               round(paper_stride["params"] / 1e6, 1)])
    elif family == "densenet":
        table = Table(["model", "params (ours)", "params (released)", "GMACs (ours)"], title="DenseNet-BC")
        for name, paper in papers.DENSENET_PARAMS.items():
            ours = count(models.build(name), image)
            table.rows.append([name, ours["params"], paper, round(ours["macs"] / 1e9, 2)])
    else:
        raise ValueError(f"family must be alexnet, vgg, googlenet, resnet or densenet, not {family!r}")
    return table


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
