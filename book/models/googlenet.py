"""GoogLeNet (Szegedy et al., 2015): inception blocks with the channel numbers of Table 1."""

from __future__ import annotations

import re

import torch
from torch import nn

from .alexnet import local_response_norm
from .init import he_init
from . import naming
from .spec import Compared, Spec, register

# Table 1, one row per inception block: #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj.
# The input channels of each row are the sum of the previous row's four outputs.
INCEPTION_TABLE: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
STAGES = (("3a", "3b"), ("4a", "4b", "4c", "4d", "4e"), ("5a", "5b"))


def conv_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
              batch_norm: bool = False) -> nn.Sequential:
    """A convolution with "same" padding, an optional BN (Ioffe & Szegedy, 2015) and a
    ReLU (§5)."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                                         kernel_size // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Inception(nn.Module):
    """Four parallel branches concatenated on channels (§4, Figure 2b).

    ``reduce=False`` drops the 1×1 reductions before the 3×3 and 5×5 convolutions and
    the pool projection: the naive block of Figure 2a, whose cost the reductions exist
    to cut.
    """

    def __init__(self, in_channels: int, c1: int, c3_reduce: int, c3: int,
                 c5_reduce: int, c5: int, pool_proj: int,
                 *, reduce: bool = True, batch_norm: bool = False):
        super().__init__()
        self.branch1 = conv_relu(in_channels, c1, 1, batch_norm=batch_norm)
        if reduce:
            self.branch3 = nn.Sequential(
                conv_relu(in_channels, c3_reduce, 1, batch_norm=batch_norm),
                conv_relu(c3_reduce, c3, 3, batch_norm=batch_norm))
            self.branch5 = nn.Sequential(
                conv_relu(in_channels, c5_reduce, 1, batch_norm=batch_norm),
                conv_relu(c5_reduce, c5, 5, batch_norm=batch_norm))
            self.branch_pool = nn.Sequential(
                nn.MaxPool2d(3, 1, 1),
                conv_relu(in_channels, pool_proj, 1, batch_norm=batch_norm))
        else:
            self.branch3 = conv_relu(in_channels, c3, 3, batch_norm=batch_norm)
            self.branch5 = conv_relu(in_channels, c5, 5, batch_norm=batch_norm)
            # the naive block passes all pooled channels through
            self.branch_pool = nn.MaxPool2d(3, 1, 1)
        self.out_channels = c1 + c3 + c5 + (pool_proj if reduce else in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x),
                          self.branch_pool(x)], dim=1)


class AuxClassifier(nn.Module):
    """The side classifier on 4a and 4d (§5): 5×5/3 average pool, 1×1 conv 128, FC 1024,
    dropout 0.7."""

    def __init__(self, in_channels: int, num_classes: int, width: float = 1.0):
        super().__init__()
        c, hidden = max(1, round(128 * width)), max(1, round(1024 * width))
        self.layers = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), conv_relu(in_channels, c, 1), nn.Flatten(),
            nn.Linear(c * 16, hidden), nn.ReLU(inplace=True), nn.Dropout(0.7),
            nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class GoogLeNet(nn.Module):
    """The 22-layer network of Table 1. ``width`` scales every channel count of the
    table.

    ``aux=True`` adds the two auxiliary classifiers; in training, forward then returns
    (logits, aux1, aux2) and the loss weights each side classifier by 0.3 (§5).
    ``stem="small"`` swaps the 7×7/2 stem and its two pools for 3×3 convolutions and one
    pool (28–96 px). ``reduce=False`` builds every block as the naive block of Figure 2a.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, *,
                 width: float = 1.0, aux: bool = False, lrn: bool = True,
                 batch_norm: bool = False, stem: str = "imagenet",
                 dropout: float = 0.4, reduce: bool = True):
        super().__init__()
        w = lambda c: max(1, round(c * width))  # noqa: E731 - a one-line scaling rule
        # The paper names LocalRespNorm (Figure 3) without constants: AlexNet's are
        # used. (BVLC's Caffe GoogLeNet uses k=1 with the same α in Caffe's α/n
        # convention.)
        norm = local_response_norm if lrn and not batch_norm else nn.Identity
        if stem == "imagenet":
            self.stem = nn.Sequential(
                conv_relu(in_channels, w(64), 7, 2, batch_norm),
                nn.MaxPool2d(3, 2, ceil_mode=True), norm(),
                conv_relu(w(64), w(64), 1, batch_norm=batch_norm),
                conv_relu(w(64), w(192), 3, batch_norm=batch_norm),
                norm(), nn.MaxPool2d(3, 2, ceil_mode=True))
        else:
            # One pooling instead of the paper's two: inception 3a sees 16×16 from a
            # 32 px input.
            self.stem = nn.Sequential(
                conv_relu(in_channels, w(64), 3, batch_norm=batch_norm),
                nn.MaxPool2d(3, 2, 1),
                conv_relu(w(64), w(64), 1, batch_norm=batch_norm),
                conv_relu(w(64), w(192), 3, batch_norm=batch_norm))
        channels = w(192)
        blocks: dict[str, nn.Module] = {}
        for i, stage in enumerate(STAGES):
            if i > 0:
                blocks[f"pool{i + 2}"] = nn.MaxPool2d(3, 2, ceil_mode=True)
            for name in stage:
                block = Inception(channels, *(w(c) for c in INCEPTION_TABLE[name]),
                                  reduce=reduce, batch_norm=batch_norm)
                blocks[f"inception{name}"] = block
                channels = block.out_channels
        self.blocks = nn.ModuleDict(blocks)
        self.aux1 = (AuxClassifier(self.blocks["inception4a"].out_channels, num_classes,
                                   width) if aux else None)
        self.aux2 = (AuxClassifier(self.blocks["inception4d"].out_channels, num_classes,
                                   width) if aux else None)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Dropout(dropout), nn.Linear(channels, num_classes))
        he_init(self, (nn.Conv2d,))  # the paper's initialisation was not published


    def layer_names(self) -> dict[str, str]:
        """Table 1 and BVLC's Caffe model: conv1, pool1, conv2 reduce, conv2, pool2,
        inception 3a, …"""
        names, group, last = {"stem": "stem", "blocks": "blocks"}, 1, 0
        # a pool ends a group: conv2 reduce, conv2, pool2
        for key, module in self.stem.named_children():
            conv = naming.weighted(module)
            if conv is not None:
                names[f"stem.{key}"] = f"conv{group}" + (
                    " reduce" if conv.kernel_size == (1, 1) else "")
                last = group
            else:
                names[f"stem.{key}"] = f"{naming.kind(module)}{last}"
                group += isinstance(module, nn.MaxPool2d)
        for key in self.blocks:
            match = re.fullmatch(r"inception(\w+)", key)
            names[f"blocks.{key}"] = f"inception {match[1]}" if match else key
        head = naming.caffe(list(self.head.named_children()))
        return {**names,
                **{f"head.{k}": re.sub(r"\d+$", "", v) for k, v in head.items()}}

    def forward(self, x: torch.Tensor):
        x = self.stem(x)
        side = []
        for name, block in self.blocks.items():
            x = block(x)
            if (self.training and self.aux1 is not None
                    and name in ("inception4a", "inception4d")):
                side.append((self.aux1 if name == "inception4a" else self.aux2)(x))
        logits = self.head(x)
        return (logits, *side) if side else logits


def paper_table():
    """Table 1's inception rows: parameters and multiply-adds of each block, ours beside
    the paper's."""
    from .. import papers
    from ..summary import Table, count

    table = Table(["block", "params K (ours)", "params K (paper)", "ops M (ours)",
                   "ops M (paper)"], title="GoogLeNet, Table 1: inception blocks")
    for block, (params, ops) in papers.GOOGLENET_ROWS.items():
        channels, side = papers.GOOGLENET_INPUT[block]
        ours = count(Inception(channels, *INCEPTION_TABLE[block]), (1, channels, side, side))
        table.rows.append([block, round(ours["params"] / 1e3, 1), params / 1e3,
                           round(ours["macs"] / 1e6, 1), ops / 1e6])
    return table


SPEC = register(Spec(
    # depth 1: the stem and each inception block (the ModuleDict of blocks is iterated,
    # not called)
    family="googlenet", chapter="04_googlenet", model_class=GoogLeNet, diagram_depth=1,
    paper_table=paper_table,
    diagram_block=("blocks.inception3a", 2),  # the four branches of Figure 2b
    builders={"googlenet": GoogLeNet},
    small={"googlenet": (32, dict(width=0.25, stem="small", lrn=False))},
    cpu=dict(epochs=1, batch_size=128, lr=0.05),  # 1 epoch: room for the trained claim
    gpu=dict(resolution=96, epochs=10, batch_size=128, lr=0.01, options=(("aux", True),)),  # §5
    compared=(Compared("GoogLeNet", "googlenet", "googlenet", trained=True),),
))


def naive_width(width: float, resolution: int = 32, in_channels: int = 1) -> float:
    """The largest width at which the naive small GoogLeNet (every block as Figure 2a)
    costs no more multiply-adds than the small GoogLeNet with reductions at ``width``:
    the two sides of an equal-compute comparison (§4's reason for the reductions)."""
    from ..summary import count

    shape = (1, in_channels, resolution, resolution)
    macs = lambda w, reduce: count(  # noqa: E731 - one measurement, two uses
        GoogLeNet(10, in_channels, width=w, stem="small", lrn=False, reduce=reduce), shape)["macs"]
    budget, low, high = macs(width, True), 0.0, width
    for _ in range(20):  # bisection; channels are rounded, so the cost is a step function
        middle = (low + high) / 2
        low, high = (middle, high) if macs(middle, False) <= budget else (low, middle)
    return low
