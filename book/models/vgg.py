"""VGG (Simonyan & Zisserman, 2015): the six configurations of Table 1, one builder.

Module names follow torchvision (``features``, ``avgpool``, ``classifier``), so torchvision's
state dicts load unchanged into A, B, D and E.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from .alexnet import local_response_norm
from . import naming
from .spec import Compared, Spec, register

# Table 1. An int is a 3×3 convolution with that many channels; "1x1:C" a 1×1 convolution (config C)
# (any "kxk:C" works, e.g. "5x5:C" for the paper's §2.3 comparison with larger filters);
# "M" a 2×2 max-pool; "LRN" local response normalisation (config A-LRN).
CONFIGS: dict[str, list] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, "1x1:256", "M", 512, 512, "1x1:512",
          "M", 512, 512, "1x1:512", "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def make_features(config: list, in_channels: int = 3, width: float = 1.0,
                  batch_norm: bool = False) -> nn.Sequential:
    """The convolutional part of a Table 1 column: conv(+BN)+ReLU per entry, pools and
    LRN in place."""
    layers: list[nn.Module] = []
    channels = in_channels
    for entry in config:
        if entry == "M":
            layers.append(nn.MaxPool2d(2, 2))
        elif entry == "LRN":
            # AlexNet's (§2.1 cites Krizhevsky et al.)
            layers.append(local_response_norm())
        else:
            if isinstance(entry, str):
                size, out = entry.split(":")
                kernel, out = int(size.split("x")[0]), int(out)
            else:
                kernel, out = 3, entry
            out = max(1, round(out * width))
            layers.append(nn.Conv2d(channels, out, kernel, padding=kernel // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            channels = out
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """Conv stacks of Table 1, then FC-4096, FC-4096, FC-classes with dropout 0.5 (§2.1,
    §3.1).

    ``width`` scales every convolution's channels (D2L trains VGG-11 with width 1/4);
    ``hidden`` sets the FC width and ``pool_size`` the side of the adaptive pool before
    it. ``config`` is a column name of Table 1 or a list in the same notation, for
    experiments.
    """

    def __init__(self, config: str | list = "A", num_classes: int = 1000,
                 in_channels: int = 3, *, width: float = 1.0, hidden: int = 4096,
                 pool_size: int = 7, dropout: float = 0.5, batch_norm: bool = False):
        super().__init__()
        self.features = make_features(
            CONFIGS[config] if isinstance(config, str) else config, in_channels, width,
            batch_norm)
        last = [m for m in self.features if isinstance(m, nn.Conv2d)][-1].out_channels
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Linear(last * pool_size * pool_size, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        # He et al. initialisation; the paper pre-trained A to start B–E (§3.1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)


    def layer_names(self) -> dict[str, str]:
        """conv{block}_{i}, relu{block}_{i}, pool{block}, …, fc{blocks + 1}: the names
        of the VGG Caffe models."""
        names, block, i = {}, 1, 0
        for key, module in self.features.named_children():
            if isinstance(module, nn.Conv2d):
                i += 1
            names[f"features.{key}"] = (
                f"pool{block}" if isinstance(module, nn.MaxPool2d) else
                f"conv{block}_{i}" if isinstance(module, nn.Conv2d) else
                f"{naming.kind(module)}{block}" + (f"_{i}" if i else ""))
            if isinstance(module, nn.MaxPool2d):
                block, i = block + 1, 0
        classifier = naming.caffe(list(self.classifier.named_children()), block - 1)
        return {**names, **{f"classifier.{k}": v for k, v in classifier.items()}}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def paper_table():
    """Table 2: parameters in millions of every configuration, ours beside the paper's."""
    from .. import papers
    from ..summary import Table, count

    table = Table(["config", "model", "params M (ours)", "params M (paper)", "GMACs (ours)"],
                  title="VGG, Table 2: parameters in millions")
    for config, name in papers.VGG_NAMES.items():
        ours = count(VGG(config), (1, 3, 224, 224))
        table.rows.append([config, name, round(ours["params"] / 1e6, 1),
                           papers.VGG_PARAMS_M[config], round(ours["macs"] / 1e9, 2)])
    return table


# Table 1's columns by the names the book uses; every one trains with VGG-11's recipe.
_NAMES = {"vgg11": "A", "vgg11_lrn": "A-LRN", "vgg13": "B", "vgg16_c": "C",
          "vgg16": "D", "vgg19": "E"}
SPEC = register(Spec(
    family="vgg", chapter="02_vgg", model_class=VGG, diagram_depth=2, paper_table=paper_table,
    builders={name: partial(VGG, config) for name, config in _NAMES.items()},
    small={name: (32, dict(width=0.25, hidden=512, pool_size=1)) for name in _NAMES},
    cpu=dict(epochs=3, batch_size=128, lr=0.05),
    gpu=dict(resolution=224, epochs=10, batch_size=128, lr=0.01, options=(("width", 0.25),)),
    compared=(Compared("VGG-11", "vgg11", "vgg11", trained=True),
              Compared("VGG-16", "vgg16", "vgg16", note="not trained (ch. 2 trains VGG-11)")),
))
