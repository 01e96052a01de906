"""Parameter and multiply-add counts measured by torch's FlopCounterMode, never by hand-written formulas."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count


def _attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# Attention on the CPU runs as an op FlopCounterMode has no formula for, so it would count as zero: give it
# the count torch uses for the same op on a GPU (the two matmuls QKᵀ and AV; softmax is not counted).
_CPU_ATTENTION = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops}


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
    # In eval mode nn.MultiheadAttention takes a fused "fast path" that FlopCounterMode cannot see into
    # (ViT-B/16 would lose a third of its multiply-adds); the ordinary path counts every projection.
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
    aliases: dict[str, int] = field(default_factory=dict, repr=False)  # other keys of rows: module paths

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
        """The row whose first cell is ``first``, or whose module path (``features.0``) is ``first``."""
        for row in self.rows:
            if row[0] == first:
                return row
        if first in self.aliases:
            return self.rows[self.aliases[first]]
        raise KeyError(first)


# Paper-style layer names ("conv1", "inception 3a", "conv3_x block 2") for tables and diagrams, instead of
# module paths such as "features.7". They are derived from the module structure (counting convolutions,
# pools and blocks in order), never from a list of indices, so they follow the code when a config changes.

_WEIGHTED = (nn.Conv2d, nn.Linear)
_KINDS = ((nn.ReLU, "relu"), (nn.GELU, "gelu"), (nn.Tanh, "tanh"), (nn.LocalResponseNorm, "norm"),
          (nn.BatchNorm2d, "bn"), (nn.LayerNorm, "ln"), (nn.Dropout, "drop"), (nn.Identity, "identity"),
          ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), "avgpool"), ((nn.MaxPool2d, nn.AvgPool2d), "pool"),
          (nn.Flatten, "flatten"))


def _kind(module: nn.Module) -> str:
    """A short Caffe-style word for a layer without weights: relu, norm, pool, drop, …"""
    for types, word in _KINDS:
        if isinstance(module, types):
            return word
    return type(module).__name__.lower()


def _weighted(module: nn.Module) -> nn.Module | None:
    """The one convolution or linear layer that ``module`` is (or wraps, as conv+BN+ReLU does), else None."""
    found = [m for m in module.modules() if isinstance(m, _WEIGHTED)]
    return found[0] if len(found) == 1 else None


def _caffe(children: list[tuple[str, nn.Module]], start: int = 0) -> dict[str, str]:
    """AlexNet's Caffe names for a sequence: conv1, relu1, norm1, pool1, conv2, …, fc6, relu6, drop6, fc7.

    Convolutions and linear layers share one counter; a layer without weights takes the number of the
    weighted layer before it. Other blocks are "block 1", "block 2", ….
    """
    names, n, blocks = {}, start, 0
    for key, module in children:
        weighted = _weighted(module)
        if weighted is not None:
            n += 1
            name = f"{'fc' if isinstance(weighted, nn.Linear) else 'conv'}{n}"
        elif next(module.children(), None) is None:
            name = _kind(module) + (str(n) if n and _kind(module) not in ("flatten", "avgpool") else "")
        else:
            blocks += 1
            name = f"block {blocks}"
        names[key] = name if name not in names.values() else f"{name} ({key})"
    return names


def _vgg(model: nn.Module) -> dict[str, str]:
    """conv{block}_{i}, relu{block}_{i}, pool{block}, …, fc{blocks + 1}: the names of the VGG Caffe models."""
    names, block, i = {}, 1, 0
    for key, module in model.features.named_children():
        if isinstance(module, nn.Conv2d):
            i += 1
        names[f"features.{key}"] = (f"pool{block}" if isinstance(module, nn.MaxPool2d) else
                                    f"conv{block}_{i}" if isinstance(module, nn.Conv2d) else
                                    f"{_kind(module)}{block}" + (f"_{i}" if i else ""))
        if isinstance(module, nn.MaxPool2d):
            block, i = block + 1, 0
    names.update({f"classifier.{k}": v for k, v in _caffe(list(model.classifier.named_children()), block - 1).items()})
    return names


def _family_names(model: nn.Module) -> dict[str, str]:
    """The names each paper uses for its own network, for the modules that have one."""
    from . import models
    from .models.densenet import DenseBlock

    if isinstance(model, models.AlexNet):  # conv1…conv5, then fc6…fc8, as in the paper and Caffe
        children = [(f"{part}.{k}", m) for part in ("features", "classifier")
                    for k, m in getattr(model, part).named_children()]
        return _caffe(children)
    if isinstance(model, models.VGG):
        return _vgg(model)
    if isinstance(model, models.NiN):  # mlpconv1…mlpconv4, pool{i} after mlpconv i (§3.1)
        names, n = {}, 0
        for part in ("features", "head"):
            for key, module in getattr(model, part).named_children():
                is_mlpconv = isinstance(module, nn.Sequential) and isinstance(module[0], nn.Conv2d)
                n += is_mlpconv
                kind = "mlpconv" if is_mlpconv else "fc" if isinstance(module, nn.Linear) else _kind(module)
                names[f"{part}.{key}"] = kind + (str(n) if kind in ("mlpconv", "pool") else "")
        return {**_caffe_fill(names), "features": "features", "head": "head"}
    if isinstance(model, models.GoogLeNet):  # Table 1 and BVLC's Caffe model: conv1, pool1, conv2, inception 3a, …
        names, group, last = {"stem": "stem", "blocks": "blocks"}, 1, 0
        for key, module in model.stem.named_children():  # a pool ends a group: conv2 reduce, conv2, pool2
            conv = _weighted(module)
            if conv is not None:
                names[f"stem.{key}"] = f"conv{group}" + (" reduce" if conv.kernel_size == (1, 1) else "")
                last = group
            else:
                names[f"stem.{key}"] = f"{_kind(module)}{last}"
                group += isinstance(module, nn.MaxPool2d)
        for key in model.blocks:
            match = re.fullmatch(r"inception(\w+)", key)
            names[f"blocks.{key}"] = f"inception {match[1]}" if match else key
        head = _caffe(list(model.head.named_children()))
        names.update({f"head.{k}": re.sub(r"\d+$", "", v) for k, v in head.items()})
        return names
    if isinstance(model, models.ResNet):  # Table 1: conv1, then stages conv2_x … conv5_x
        names = {}
        for key, stage in model.named_children():
            if match := re.fullmatch(r"layer(\d+)", key):
                names[key] = f"conv{int(match[1]) + 1}_x"
                names.update({f"{key}.{j}": f"{names[key]} block {int(j) + 1}" for j, _ in stage.named_children()})
        return names
    if isinstance(model, models.DenseNet):  # Table 1: dense block 1, transition 1, …
        names = {"features": "features"}
        for key, module in model.features.named_children():
            match = re.fullmatch(r"(denseblock|transition)(\d+)", key)
            names[f"features.{key}"] = f"{'dense block' if match[1] == 'denseblock' else 'transition'} {match[2]}" \
                if match else key
            if isinstance(module, DenseBlock):
                names.update({f"features.{key}.{k}": f"{names[f'features.{key}']} layer {i + 1}"
                              for i, k in enumerate(module.keys())})
        return names
    if isinstance(model, models.ViT):
        names = {"patch_embed": "patch embed", "blocks": "encoder", "norm": "final norm", "head": "head"}
        names.update({f"blocks.{j}": f"block {int(j) + 1}" for j, _ in model.blocks.named_children()})
        return names
    if isinstance(model, models.CoAtNet):  # Table 3: stages S0…S4
        names = {}
        for key, stage in model.named_children():
            if re.fullmatch(r"s\d", key):
                names[key] = key.upper()
                if key != "s0":
                    names.update({f"{key}.{j}": f"{key.upper()} block {int(j) + 1}" for j, _ in stage.named_children()})
        return names
    return {}


def _caffe_fill(names: dict[str, str]) -> dict[str, str]:
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


def layer_names(model: nn.Module) -> dict[str, str]:
    """{module path: paper-style name} for every submodule, e.g. {"features.0": "conv1", "classifier.1": "fc6"}.

    Each architecture of ``book.models`` gets its paper's names (AlexNet conv1…fc8, VGG conv3_2 and pool3,
    NiN mlpconv1, GoogLeNet "inception 4a", ResNet "conv3_x block 2", DenseNet "dense block 2" and
    "transition 1", ViT "block 3", CoAtNet "S2"). Inside such a module, or in any other model, layers of a
    sequence are numbered in Caffe's style (conv1, relu1, pool1, fc2) and other modules keep their
    attribute name, prefixed by their parent's name ("conv2_x block 1 conv1").
    """
    explicit = _family_names(model)
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
            numbered[parent] = _caffe(children) if all(k.isdigit() for k, _ in children) else {}
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

    Rows carry the paper's layer names (``layer_names``); ``table.row`` also accepts the module path.
    The last row is the total. Multiply-adds of a module include everything inside it.
    """
    counter, shapes = _measure(model, input_shape)
    flops = counter.get_flop_counts()
    display = layer_names(model)
    table = Table(["layer", "output shape", "params", "macs"], title=type(model).__name__)
    for name, module in model.named_modules():
        if not name or name.count(".") != depth - 1:
            continue
        table.aliases[name] = len(table.rows)
        # FlopCounterMode names a module by its path below the root, prefixed with the root's class name.
        macs = sum(flops.get(f"{type(model).__name__}.{name}", {}).values()) // 2
        params = sum(p.numel() for p in module.parameters())
        table.rows.append([display[name], "×".join(map(str, shapes.get(name, ())[1:])), params, macs])
    total = _totals(model, counter)
    table.rows.append(["total", "×".join(map(str, shapes.get("", ())[1:])), total["params"], total["macs"]])
    return table



def paper_comparison(family: str) -> Table:
    """Our measured numbers beside the paper's table, for "alexnet", "vgg", "googlenet", "resnet", "densenet",
    "vit" or "coatnet"."""
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
    elif family == "vit":
        table = Table(["model", "layers", "D", "MLP", "heads", "params M (ours)", "params M (paper)"],
                      title="ViT, Table 1 (B/16, L/16, H/14 at 224 px)")
        for name, (depth, dim, mlp, heads, paper) in papers.VIT_TABLE1.items():
            with torch.device("meta"):  # counting parameters needs no memory for them
                model = models.build("vit", patch_size=papers.VIT_PATCH[name], dim=dim, depth=depth, heads=heads,
                                     mlp_dim=mlp)
            table.rows.append([name, depth, dim, mlp, heads, round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
                               paper / 1e6])
    elif family == "coatnet":
        table = Table(["model", "params M (ours)", "params M (paper)", "params M (timm)", "GMACs (ours)",
                       "GFLOPs (paper)", "GMACs (timm)"], title="CoAtNet-0, Table 4 (224 px)")
        ours = count(models.build("coatnet"), image)
        paper_params, paper_flops, _ = papers.COATNET_TABLE4["CoAtNet-0"]
        timm_params, timm_macs = papers.COATNET0_TIMM
        table.rows.append(["CoAtNet-0", round(ours["params"] / 1e6, 2), paper_params / 1e6, timm_params / 1e6,
                           round(ours["macs"] / 1e9, 2), paper_flops / 1e9, timm_macs / 1e9])
    else:
        raise ValueError(f"family must be alexnet, vgg, googlenet, resnet, densenet, vit or coatnet, not {family!r}")
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
