"""ResNet (He, Zhang, Ren & Sun, 2016): basic and bottleneck blocks and the builders of Table 1.

Module names follow torchvision's ``resnet.py`` so its state dicts load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

# Table 1: the block type and the number of blocks in conv2_x … conv5_x.
CONFIGS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}


class BasicBlock(nn.Module):
    """Two 3×3 convolutions and an identity shortcut (Figure 5 left); a 1×1 projection when shapes change (option B)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None,
                 stride_on: str = "3x3"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3, 1×1 expand ×4 (Figure 5 right).

    The paper downsamples with the first 1×1 convolution (§3.3, "performed by conv3_1, conv4_1 and
    conv5_1 with a stride of 2"); torchvision ("v1.5") strides the 3×3 instead, which costs more
    multiply-adds and is more accurate. ``stride_on`` chooses: "1x1" (paper) or "3x3" (torchvision).
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None,
                 stride_on: str = "3x3"):
        super().__init__()
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
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """conv1 (7×7/2, 64) + 3×3/2 max-pool, four stages of blocks, global average pool, FC (Table 1).

    ``width`` scales the stage widths 64-128-256-512; ``stem="small"`` uses a 3×3/1 convolution and
    no pooling, the CIFAR-style stem of §4.2, for 28–96 px images.
    """

    def __init__(self, block: str, layers: tuple[int, ...], num_classes: int = 1000, in_channels: int = 3, *,
                 width: float = 1.0, stride_on: str = "3x3", stem: str = "imagenet", zero_init_residual: bool = False):
        super().__init__()
        if stride_on not in ("1x1", "3x3"):
            raise ValueError(f"stride_on must be '1x1' (the paper) or '3x3' (torchvision v1.5), not {stride_on!r}")
        block_cls = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        widths = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
        self.in_channels = widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._stage(block_cls, widths[0], layers[0], 1, stride_on)
        self.layer2 = self._stage(block_cls, widths[1], layers[1], 2, stride_on)
        self.layer3 = self._stage(block_cls, widths[2], layers[2], 2, stride_on)
        self.layer4 = self._stage(block_cls, widths[3], layers[3], 2, stride_on)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3] * block_cls.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:  # each block starts as the identity (Goyal et al., 2017)
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_((m.bn3 if isinstance(m, Bottleneck) else m.bn2).weight)

    def _stage(self, block_cls, channels: int, blocks: int, stride: int, stride_on: str) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_channels != channels * block_cls.expansion:
            downsample = nn.Sequential(  # projection shortcut, option B of §3.3
                nn.Conv2d(self.in_channels, channels * block_cls.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(channels * block_cls.expansion))
        layers = [block_cls(self.in_channels, channels, stride, downsample, stride_on)]
        self.in_channels = channels * block_cls.expansion
        layers += [block_cls(self.in_channels, channels, stride_on=stride_on) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet(name: str, num_classes: int = 1000, in_channels: int = 3, **options) -> ResNet:
    """ResNet-18/34/50/101/152 from Table 1."""
    block, layers = CONFIGS[name]
    return ResNet(block, layers, num_classes, in_channels, **options)
