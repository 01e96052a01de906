"""Every architecture of the course, built by name.

``build(name)`` gives the paper's ImageNet configuration (3×224×224 in, 1000 classes).
``build_small(name)`` gives the same code's configuration for Fashion-MNIST (1 channel,
10 classes, 28–64 px): narrower, with a stem that does not shrink small images. Options
of each family pass through. Each model file registers its architecture's ``Spec``
(``book.models.spec``); this module only reads them.
"""

from __future__ import annotations

from torch import nn

from .alexnet import AlexNet
from .batchnorm import BatchNorm, fold_batchnorm
from .coatnet import CoAtNet
from .densenet import DenseNet
from .googlenet import GoogLeNet, Inception, naive_width
from .lenet import lenet, lenet_bn
from .nin import NiN
from .resnet import ResNet
from .spec import Compared, Spec, names, register, spec_for, spec_of, specs
from .vgg import VGG
from .vit import ViT


def build(name: str, num_classes: int | None = None, in_channels: int | None = None,
          **options) -> nn.Module:
    """The model ``name`` in its paper's configuration, unless ``options`` say otherwise.

    The defaults are ImageNet's 1000 classes and 3 channels; a family without an
    ImageNet configuration (LeNet) defaults to Fashion-MNIST's 10 classes and 1
    channel."""
    spec = spec_for(name)
    classes, channels = (1000, 3) if spec.imagenet else (10, 1)
    return spec.builders[name](num_classes=classes if num_classes is None else num_classes,
                               in_channels=channels if in_channels is None else in_channels,
                               **options)


def small_resolution(name: str) -> int:
    """The input side (pixels) the small configuration of ``name`` is designed for."""
    return spec_for(name).small[name][0]


def small_options(name: str) -> dict:
    """The model options of the small configuration of ``name``."""
    return dict(spec_for(name).small[name][1])


def build_small(name: str, num_classes: int = 10, in_channels: int = 1, **overrides) -> nn.Module:
    """The Fashion-MNIST configuration of ``name``: the same code, narrower, with a
    small-image stem."""
    return build(name, num_classes, in_channels, **{**small_options(name), **overrides})


__all__ = ["build", "build_small", "names", "small_resolution", "small_options",
           "specs", "spec_for", "spec_of", "register", "Spec", "Compared", "BatchNorm",
           "fold_batchnorm", "AlexNet", "VGG", "NiN", "GoogLeNet", "Inception", "naive_width",
           "ResNet", "DenseNet", "ViT", "CoAtNet", "lenet", "lenet_bn"]
