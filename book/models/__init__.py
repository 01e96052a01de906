"""Every architecture of the course, built by name.

``build(name)`` gives the paper's ImageNet configuration (3×224×224 in, 1000 classes).
``build_small(name)`` gives the same code's configuration for Fashion-MNIST (1 channel, 10 classes,
28–64 px): narrower, with a stem that does not shrink small images. Options of each family pass through.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

from torch import nn

from .alexnet import AlexNet
from .batchnorm import BatchNorm, fold_batchnorm
from .coatnet import CoAtNet, coatnet
from .densenet import DenseNet, densenet
from .googlenet import GoogLeNet, Inception
from .lenet import lenet, lenet_bn
from .nin import NiN
from .resnet import ResNet, resnet
from .vgg import VGG
from .vit import ViT

_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "alexnet": AlexNet,
    "vgg11": partial(VGG, "A"),
    "vgg11_lrn": partial(VGG, "A-LRN"),
    "vgg13": partial(VGG, "B"),
    "vgg16_c": partial(VGG, "C"),
    "vgg16": partial(VGG, "D"),
    "vgg19": partial(VGG, "E"),
    "nin": NiN,
    "googlenet": GoogLeNet,
    "lenet": lenet,
    "lenet_bn": lenet_bn,
    **{f"resnet{d}": partial(resnet, f"resnet{d}") for d in (18, 34, 50, 101, 152)},
    **{f"densenet{d}": partial(densenet, f"densenet{d}") for d in (121, 169, 201, 161)},
    "vit": ViT,
    "coatnet": partial(coatnet, "coatnet0"),
}

# The small-image configuration of each family: (input side in pixels, options). The widths are
# chosen so that a chapter trains on Fashion-MNIST in minutes on a 2-core CPU.
_SMALL_VGG = (32, dict(width=0.25, hidden=512, pool_size=1))
_SMALL_RESNET = (28, dict(width=0.25, stem="small"))
SMALL: dict[str, tuple[int, dict]] = {
    "alexnet": (32, dict(width=0.25, stem="small", pool_size=3, lrn=False)),
    **{name: _SMALL_VGG for name in ("vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19")},
    "nin": (32, dict(width=0.25, stem="small")),
    "googlenet": (32, dict(width=0.25, stem="small", lrn=False)),
    "lenet": (28, {}),
    "lenet_bn": (28, {}),
    **{f"resnet{d}": _SMALL_RESNET for d in (18, 34, 50, 101, 152)},
    # DenseNets keep their shape with half the layers per block and growth rate 12 (k=24 for 161).
    "densenet121": (28, dict(growth_rate=12, blocks=(3, 6, 12, 8), stem="small")),
    "densenet169": (28, dict(growth_rate=12, blocks=(3, 6, 16, 16), stem="small")),
    "densenet201": (28, dict(growth_rate=12, blocks=(3, 6, 24, 16), stem="small")),
    "densenet161": (28, dict(growth_rate=24, blocks=(3, 6, 18, 12), stem="small")),
    "vit": (28, dict(image_size=28, patch_size=4, dim=64, depth=4, heads=4, mlp_dim=128)),
    "coatnet": (32, dict(image_size=32, stem="small")),
}


def names() -> list[str]:
    """The names ``build`` accepts."""
    return list(_BUILDERS)


def build(name: str, num_classes: int = 1000, in_channels: int = 3, **options) -> nn.Module:
    """The model ``name`` in its paper's configuration, unless ``options`` say otherwise."""
    if name not in _BUILDERS:
        raise KeyError(f"unknown model {name!r}; choose one of: {', '.join(names())}")
    if name in ("lenet", "lenet_bn") and in_channels == 3 and num_classes == 1000:
        num_classes, in_channels = 10, 1  # LeNet has no ImageNet configuration
    if name == "coatnet" and options.get("image_size", 224) < 224:  # CoAtNet-0 is too wide for small images
        return coatnet("coatnet_tiny", num_classes, in_channels, **options)
    return _BUILDERS[name](num_classes=num_classes, in_channels=in_channels, **options)


def small_resolution(name: str) -> int:
    """The input side (pixels) the small configuration of ``name`` is designed for."""
    return SMALL[name][0]


def build_small(name: str, num_classes: int = 10, in_channels: int = 1, **overrides) -> nn.Module:
    """The Fashion-MNIST configuration of ``name``: the same code, narrower, with a small-image stem."""
    if name not in SMALL:
        raise KeyError(f"unknown model {name!r}; choose one of: {', '.join(names())}")
    return build(name, num_classes, in_channels, **{**SMALL[name][1], **overrides})


__all__ = ["build", "build_small", "names", "small_resolution", "BatchNorm", "fold_batchnorm", "AlexNet", "VGG",
           "NiN", "GoogLeNet", "Inception", "ResNet", "DenseNet", "ViT", "CoAtNet"]
