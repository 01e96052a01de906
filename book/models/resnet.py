"""ResNet (He, Zhang, Ren & Sun, 2016): basic and bottleneck blocks and the builders of Table 1.

Module names follow torchvision's ``resnet.py`` so its state dicts load unchanged.
"""

from __future__ import annotations

import re
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .spec import Compared, Spec, register

# Table 1: the block type and the number of blocks in conv2_x … conv5_x.
CONFIGS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}


class ZeroPadShortcut(nn.Module):
    """Option A of §3.3: the identity, subsampled by the stride, with the new channels set to zero.

    It adds no parameter; the paper uses it for its CIFAR-10 networks (§4.2)."""

    def __init__(self, stride: int, extra_channels: int):
        super().__init__()
        self.stride, self.extra_channels = stride, extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra_channels))


class BasicBlock(nn.Module):
    """Two 3×3 convolutions and an identity shortcut (Figure 5 left); a 1×1 projection
    when shapes change (option B).

    ``residual=False`` drops the shortcut: the "plain" network of §4.1 with the same
    layers."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None, stride_on: str = "3x3",
                 residual: bool = True):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.residual:  # F(x) + x, Eq. 1 (Eq. 2 with a projection)
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3, 1×1 expand ×4 (Figure 5 right).

    The paper downsamples with the first 1×1 convolution (Table 1's caption: "performed
    by conv3_1, conv4_1 and conv5_1 with a stride of 2"); torchvision ("v1.5") strides
    the 3×3 instead, which costs more multiply-adds and is more accurate. ``stride_on``
    chooses: "1x1" (paper) or "3x3" (torchvision).
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None, stride_on: str = "3x3",
                 residual: bool = True):
        super().__init__()
        self.residual = residual
        stride_1x1, stride_3x3 = (stride, 1) if stride_on == "1x1" else (1, stride)
        self.conv1 = nn.Conv2d(in_channels, channels, 1, stride_1x1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride_3x3, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class ResNet(nn.Module):
    """conv1 (7×7/2, 64) + 3×3/2 max-pool, four stages of blocks, global average pool, FC
    (Table 1).

    ``width`` scales the stage widths 64-128-256-512 (or ``widths``, one per stage);
    ``stem="small"`` uses a 3×3/1 convolution and no pooling, the CIFAR-style stem of
    §4.2, for 28–96 px images. ``shortcut`` chooses among §3.3's options where a block
    changes shape: "A" zero-padding, "B" projection (the default), "C" projection on
    every block. ``residual=False`` builds the plain counterpart.
    """

    def __init__(self, block: str, layers: tuple[int, ...], num_classes: int = 1000,
                 in_channels: int = 3, *, width: float = 1.0,
                 widths: tuple[int, ...] | None = None, stride_on: str = "3x3",
                 stem: str = "imagenet", shortcut: str = "B", residual: bool = True,
                 zero_init_residual: bool = False):
        super().__init__()
        if stride_on not in ("1x1", "3x3"):
            raise ValueError("stride_on must be '1x1' (the paper) or '3x3' (torchvision "
                             f"v1.5), not {stride_on!r}")
        if shortcut not in ("A", "B", "C"):
            raise ValueError("shortcut must be 'A' (zero-padding), 'B' (projection where "
                             "shapes change) or 'C' (projection everywhere), as in §3.3; "
                             f"not {shortcut!r}")
        block_cls = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        widths = widths or tuple(max(1, round(c * width)) for c in (64, 128, 256, 512))
        if len(widths) != len(layers):
            raise ValueError(f"{len(layers)} stages need {len(layers)} widths, got {widths}")
        self.shortcut, self.residual = shortcut, residual
        self.in_channels = widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        # conv2_x, conv3_x, … in Table 1
        self.stage_names = [f"layer{i + 1}" for i in range(len(layers))]
        for i, (name, channels, blocks) in enumerate(zip(self.stage_names, widths, layers)):
            setattr(self, name, self._stage(block_cls, channels, blocks, 1 if i == 0 else 2,
                                            stride_on))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1] * block_cls.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He et al. 2015's initialisation, as §3.4 says
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:  # each block starts as the identity (Goyal et al., 2017)
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_((m.bn3 if isinstance(m, Bottleneck) else m.bn2).weight)

    def _shortcut(self, out_channels: int, stride: int) -> nn.Module | None:
        """The shortcut of one block (§3.3); None is the identity."""
        changes_shape = stride != 1 or self.in_channels != out_channels
        if not self.residual or (self.shortcut != "C" and not changes_shape):
            return None
        if self.shortcut == "A":
            return ZeroPadShortcut(stride, out_channels - self.in_channels)
        return nn.Sequential(
            nn.Conv2d(self.in_channels, out_channels, 1, stride, bias=False),
            nn.BatchNorm2d(out_channels))

    def _stage(self, block_cls, channels: int, blocks: int, stride: int,
               stride_on: str) -> nn.Sequential:
        out_channels = channels * block_cls.expansion
        layers = []
        for i in range(blocks):
            stride_i = stride if i == 0 else 1
            layers.append(block_cls(self.in_channels, channels, stride_i,
                                    self._shortcut(out_channels, stride_i),
                                    stride_on, self.residual))
            self.in_channels = out_channels
        return nn.Sequential(*layers)


    def layer_names(self) -> dict[str, str]:
        """Table 1: conv1, then the stages conv2_x … conv5_x and their blocks."""
        names = {}
        for key, stage in self.named_children():
            if match := re.fullmatch(r"layer(\d+)", key):
                names[key] = f"conv{int(match[1]) + 1}_x"
                names.update({f"{key}.{j}": f"{names[key]} block {int(j) + 1}"
                              for j, _ in stage.named_children()})
        return names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet(name: str, num_classes: int = 1000, in_channels: int = 3, **options) -> ResNet:
    """ResNet-18/34/50/101/152 from Table 1."""
    block, layers = CONFIGS[name]
    return ResNet(block, layers, num_classes, in_channels, **options)


def cifar_resnet(depth: int, num_classes: int = 10, in_channels: int = 3, *,
                 residual: bool = True, widths: tuple[int, int, int] = (16, 32, 64),
                 shortcut: str = "A") -> ResNet:
    """The CIFAR-10 networks of §4.2: a 3×3 convolution, three stages of n basic blocks
    on 16, 32 and 64 channels (6n + 2 weighted layers), global average pooling and a
    10-way FC; option A shortcuts. ``residual=False`` gives the plain network of
    Figure 6 (left)."""
    if (depth - 2) % 6:
        raise ValueError("a CIFAR ResNet has 6n + 2 layers (20, 32, 44, 56, 110): "
                         f"{depth} is not of that form")
    n = (depth - 2) // 6
    return ResNet("basic", (n, n, n), num_classes, in_channels, widths=widths, stem="small",
                  shortcut=shortcut, residual=residual)


def paper_table():
    """Table 1's multiply-adds, with the paper's stride placement and with torchvision's."""
    from .. import papers
    from ..summary import Table, count

    table = Table(["model", "GMACs (ours, paper stride)", "GMACs (ours, torchvision stride)",
                   "GMACs (paper)", "params M (ours)"], title="ResNet, Table 1: multiply-adds")
    image = (1, 3, 224, 224)
    for name, paper in papers.RESNET_GMACS.items():
        paper_stride = count(resnet(name, stride_on="1x1"), image)
        v15 = count(resnet(name, stride_on="3x3"), image)
        table.rows.append([name, round(paper_stride["macs"] / 1e9, 2),
                           round(v15["macs"] / 1e9, 2), paper,
                           round(paper_stride["params"] / 1e6, 1)])
    return table


SPEC = register(Spec(
    family="resnet", chapter="06_resnet", model_class=ResNet, diagram_depth=1,
    paper_table=paper_table,
    # conv3_x in full: block 1 adds a 1×1/2 projection shortcut (§3.3, option B),
    # block 2 the identity
    diagram_block=("layer2", 2),
    builders={name: partial(resnet, name) for name in CONFIGS},
    small={name: (28, dict(width=0.25, stem="small")) for name in CONFIGS},
    # batch 64: twice the steps per epoch of batch 128 at the same cost per image on the
    # CPU (benchmarks/cpu_recipe.py); one epoch keeps the chapter within 10 minutes on
    # the floor, where three took 10 minutes alone.
    cpu=dict(epochs=1, batch_size=64, lr=0.1),
    gpu=dict(resolution=96, epochs=10, batch_size=256, lr=0.05),
    compared=(Compared("ResNet-18", "resnet18", "resnet18", trained=True),
              Compared("ResNet-34", "resnet34", "resnet34",
                       note="not trained (ch. 6 trains ResNet-18)"),
              Compared("ResNet-50", "resnet50", "resnet50",
                       note="not trained (ch. 6 trains ResNet-18)")),
))
