"""Network in Network (Lin, Chen & Yan, 2014): mlpconv blocks and a global-average-pooling head."""

from __future__ import annotations

import torch
from torch import nn

from .init import he_init
from . import naming
from .spec import Compared, Spec, register


def mlpconv(in_channels: int, out_channels: int, kernel_size: int, stride: int,
            padding: int, pointwise: int = 2) -> nn.Sequential:
    """One spatial convolution followed by ``pointwise`` 1×1 convolutions: a tiny MLP at
    every pixel (§3.1)."""
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
              nn.ReLU(inplace=True)]
    for _ in range(pointwise):
        layers += [nn.Conv2d(out_channels, out_channels, 1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class NiN(nn.Module):
    """Four mlpconv blocks with AlexNet-like sizes (D2L §8.3); the last one outputs one
    map per class.

    ``head="gap"`` averages each class map (§3.2); ``head="fc"`` flattens and uses fully
    connected layers instead, for the paper's comparison in §4.6. ``stem="small"`` suits
    28–64 px images.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, *,
                 width: float = 1.0, head: str = "gap", dropout: float = 0.5,
                 stem: str = "imagenet", fc_hidden: int = 512, fc_pool: int = 3):
        super().__init__()
        c1, c2, c3 = (max(1, round(c * width)) for c in (96, 256, 384))
        first = (mlpconv(in_channels, c1, 11, 4, 0) if stem == "imagenet"
                 else mlpconv(in_channels, c1, 3, 1, 1))
        self.features = nn.Sequential(
            first, nn.MaxPool2d(3, 2),
            mlpconv(c1, c2, 5, 1, 2), nn.MaxPool2d(3, 2),
            mlpconv(c2, c3, 3, 1, 1), nn.MaxPool2d(3, 2),
            nn.Dropout(dropout),
        )
        if head == "gap":
            # The last mlpconv emits one confidence map per class; averaging replaces
            # the FC layers.
            self.head = nn.Sequential(mlpconv(c3, num_classes, 3, 1, 1),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        elif head == "fc":
            # fc_pool=3 keeps the 3×3 map of 32-px inputs as it is (a larger size would
            # only copy pixels) and shrinks the 5×5 map of 224-px inputs.
            self.head = nn.Sequential(mlpconv(c3, c3, 3, 1, 1),
                                      nn.AdaptiveAvgPool2d(fc_pool), nn.Flatten(),
                                      nn.Linear(c3 * fc_pool * fc_pool, fc_hidden),
                                      nn.ReLU(inplace=True), nn.Dropout(dropout),
                                      nn.Linear(fc_hidden, num_classes))
        else:
            raise ValueError(f"head must be 'gap' or 'fc', not {head!r}")
        # with PyTorch's default initialisation, twelve stacked ReLU layers start nearly silent
        he_init(self)


    def layer_names(self) -> dict[str, str]:
        """mlpconv1…mlpconv4, and pool{i} after mlpconv i (§3.1)."""
        names, n = {}, 0
        for part in ("features", "head"):
            for key, module in getattr(self, part).named_children():
                is_mlpconv = (isinstance(module, nn.Sequential)
                              and isinstance(module[0], nn.Conv2d))
                n += is_mlpconv
                kind = ("mlpconv" if is_mlpconv
                        else "fc" if isinstance(module, nn.Linear)
                        else naming.kind(module))
                names[f"{part}.{key}"] = kind + (str(n) if kind in ("mlpconv", "pool")
                                                 else "")
        return {**naming.numbered(names), "features": "features", "head": "head"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def class_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The per-class maps just before global average pooling (GAP head only): class
        activation maps."""
        if not isinstance(self.head[1], nn.AdaptiveAvgPool2d) or len(self.head) != 3:
            raise ValueError("class_maps needs the GAP head (head='gap')")
        return self.head[0](self.features(x))


SPEC = register(Spec(
    family="nin", chapter="03_nin", model_class=NiN, diagram_depth=2,
    diagram_block=("features.0", 1),  # mlpconv1: a convolution and two 1×1 convolutions (§3.1)
    builders={"nin": NiN},
    small={"nin": (32, dict(width=0.25, stem="small"))},
    cpu=dict(epochs=3, batch_size=128, lr=0.1),
    gpu=dict(resolution=224, epochs=10, batch_size=128, lr=0.05),
    compared=(Compared("NiN", "nin", "nin", trained=True),),
))
