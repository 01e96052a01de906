"""DenseNet (Huang, Liu, van der Maaten & Weinberger, 2017): DenseNet-BC of Table 1.

Module names follow torchvision's ``densenet.py`` so its state dicts load unchanged.
"""

from __future__ import annotations

import re
from functools import partial

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .spec import Compared, Spec, register

# Table 1 of the CVPR 2017 version (its DenseNet-161 column has k=48; arXiv v5 lists
# DenseNet-264 instead): growth rate k, initial channels (2k), layers per dense block.
CONFIGS: dict[str, tuple[int, int, tuple[int, int, int, int]]] = {
    "densenet121": (32, 64, (6, 12, 24, 16)),
    "densenet169": (32, 64, (6, 12, 32, 32)),
    "densenet201": (32, 64, (6, 12, 48, 32)),
    "densenet161": (48, 96, (6, 12, 36, 24)),
}


class DenseLayer(nn.Module):
    """BN-ReLU-Conv(1×1, 4k) then BN-ReLU-Conv(3×3, k): the bottleneck layer of
    DenseNet-B (§3).

    ``memory_efficient`` recomputes the concatenation, BN and ReLU before the 1×1
    convolution during the backward pass instead of storing them (Pleiss et al. 2017),
    as torchvision's option of the same name: the stored activations of a block then
    grow linearly with its depth instead of quadratically. Under it, ``norm1``'s running
    statistics are updated twice per training step (forward and recomputation)."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4,
                 drop_rate: float = 0.0, memory_efficient: bool = False):
        super().__init__()
        self.memory_efficient = memory_efficient
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1,
                               bias=False)
        self.dropout = nn.Dropout(drop_rate)

    def bottleneck(self, *features: torch.Tensor) -> torch.Tensor:
        # layer ℓ sees the maps of all layers before it (Eq. 2)
        x = torch.cat(features, 1)
        return self.conv1(self.relu1(self.norm1(x)))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        if (self.memory_efficient and torch.is_grad_enabled()
                and any(f.requires_grad for f in features)):
            out = checkpoint(self.bottleneck, *features, use_reentrant=False)
        else:
            out = self.bottleneck(*features)
        return self.dropout(self.conv2(self.relu2(self.norm2(out))))


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; every layer adds ``growth_rate`` channels."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int,
                 bn_size: int = 4, drop_rate: float = 0.0,
                 memory_efficient: bool = False):
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = DenseLayer(in_channels + i * growth_rate,
                                                    growth_rate, bn_size, drop_rate,
                                                    memory_efficient)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN, ReLU (as torchvision's; §3 names none), 1×1 convolution with compression θ,
    2×2 average pool (§3, "Compression")."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)


class DenseNet(nn.Module):
    """DenseNet-BC: dense blocks joined by transitions with compression 0.5.

    ``stem="small"`` replaces the 7×7/2 convolution and pool by one 3×3/1 convolution for
    28–96 px.
    """

    def __init__(self, growth_rate: int = 32, init_channels: int = 64,
                 blocks: tuple[int, ...] = (6, 12, 24, 16), num_classes: int = 1000,
                 in_channels: int = 3, *, bn_size: int = 4, compression: float = 0.5,
                 drop_rate: float = 0.0, stem: str = "imagenet",
                 memory_efficient: bool = False):
        super().__init__()
        if stem == "imagenet":
            layers = [("conv0", nn.Conv2d(in_channels, init_channels, 7, 2, 3, bias=False)),
                      ("norm0", nn.BatchNorm2d(init_channels)), ("relu0", nn.ReLU(inplace=True)),
                      ("pool0", nn.MaxPool2d(3, 2, 1))]
        else:
            layers = [("conv0", nn.Conv2d(in_channels, init_channels, 3, 1, 1, bias=False)),
                      ("norm0", nn.BatchNorm2d(init_channels)), ("relu0", nn.ReLU(inplace=True))]
        self.features = nn.Sequential()
        for name, module in layers:
            self.features.add_module(name, module)
        channels = init_channels
        for i, num_layers in enumerate(blocks):
            self.features.add_module(f"denseblock{i + 1}",
                                     DenseBlock(num_layers, channels, growth_rate, bn_size,
                                                drop_rate, memory_efficient))
            channels += num_layers * growth_rate
            if i != len(blocks) - 1:
                out = int(channels * compression)
                self.features.add_module(f"transition{i + 1}", Transition(channels, out))
                channels = out
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)


    def layer_names(self) -> dict[str, str]:
        """Table 1: dense block 1, transition 1, …, and the layers inside each dense block."""
        names = {"features": "features"}
        for key, module in self.features.named_children():
            match = re.fullmatch(r"(denseblock|transition)(\d+)", key)
            names[f"features.{key}"] = (
                f"{'dense block' if match[1] == 'denseblock' else 'transition'} {match[2]}"
                if match else key)
            if isinstance(module, DenseBlock):
                names.update({f"features.{key}.{k}": f"{names[f'features.{key}']} layer {i + 1}"
                              for i, k in enumerate(module.keys())})
        return names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.features(x))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def densenet(name: str, num_classes: int = 1000, in_channels: int = 3, *,
             growth_rate: int | None = None, init_channels: int | None = None,
             blocks: tuple[int, ...] | None = None, **options) -> DenseNet:
    """DenseNet-121/169/201/161 from Table 1; any of k, the initial width and the block
    sizes can be overridden."""
    k, c0, layers = CONFIGS[name]
    k = growth_rate or k
    return DenseNet(k, init_channels or (c0 if growth_rate is None else 2 * k), blocks or layers,
                    num_classes, in_channels, **options)


def paper_table():
    """Parameters of the released ImageNet DenseNet-BCs beside ours (the paper prints
    none: see papers.py)."""
    from .. import papers
    from ..summary import Table, count

    table = Table(["model", "params (ours)", "params (released)", "GMACs (ours)"],
                  title="DenseNet-BC")
    for name, paper in papers.DENSENET_PARAMS.items():
        ours = count(densenet(name), (1, 3, 224, 224))
        table.rows.append([name, ours["params"], paper, round(ours["macs"] / 1e9, 2)])
    return table


SPEC = register(Spec(
    # depth 2: the dense blocks and transitions inside ``features``
    family="densenet", chapter="07_densenet", model_class=DenseNet, diagram_depth=2,
    paper_table=paper_table,
    # every layer reads the concatenation of all before it
    diagram_block=("features.denseblock1", 2),
    builders={name: partial(densenet, name) for name in CONFIGS},
    # The small DenseNets keep their shape with half the layers per block and growth
    # rate 12 (k=24 for 161).
    small={"densenet121": (28, dict(growth_rate=12, blocks=(3, 6, 12, 8), stem="small")),
           "densenet169": (28, dict(growth_rate=12, blocks=(3, 6, 16, 16), stem="small")),
           "densenet201": (28, dict(growth_rate=12, blocks=(3, 6, 24, 16), stem="small")),
           "densenet161": (28, dict(growth_rate=24, blocks=(3, 6, 18, 12), stem="small"))},
    # concatenation makes it the slowest per parameter: one epoch on half the training set
    cpu=dict(epochs=1, batch_size=128, lr=0.1, train_per_class=3000),
    gpu=dict(resolution=96, epochs=10, batch_size=256, lr=0.1),
    compared=(Compared("DenseNet-121", "densenet121", "densenet121", trained=True),),
))
