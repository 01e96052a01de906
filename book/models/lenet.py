"""LeNet-5 (LeCun et al., 1998) as in D2L §7.6, and with batch normalization (Ioffe &
Szegedy, 2015 §4.1)."""

from __future__ import annotations

from torch import nn

from .batchnorm import BatchNorm
from .spec import Compared, Spec, register


def lenet(num_classes: int = 10, in_channels: int = 1, batch_norm: bool = False,
          scratch_bn: bool = True, activation: str = "sigmoid",
          bn_position: str = "before") -> nn.Sequential:
    """Two 5×5 conv + average-pool stages, then 120-84-``num_classes`` fully connected
    layers (28×28 input).

    With ``batch_norm``, a BN follows every convolution and hidden linear layer, before
    the nonlinearity as the paper places it (§3.2), or after it with
    ``bn_position="after"``; ``scratch_bn`` picks our from-scratch :class:`BatchNorm`
    over ``nn.BatchNorm2d``.
    """
    if bn_position not in ("before", "after"):
        raise ValueError("bn_position must be 'before' or 'after' the nonlinearity, "
                         f"not {bn_position!r}")
    act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}[activation]

    def norm(channels: int, dims: int) -> nn.Module:
        if not batch_norm:
            return nn.Identity()
        if scratch_bn:
            return BatchNorm(channels)
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)

    def normalised(channels: int, dims: int) -> list[nn.Module]:
        pair = [norm(channels, dims), act()]
        return pair if bn_position == "before" else pair[::-1]

    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2), *normalised(6, 2), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), *normalised(16, 2), nn.AvgPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), *normalised(120, 1),
        nn.Linear(120, 84), *normalised(84, 1),
        nn.Linear(84, num_classes),
    )


def lenet_bn(num_classes: int = 10, in_channels: int = 1, scratch_bn: bool = True) -> nn.Sequential:
    """LeNet with BN after each convolution and hidden linear layer (D2L §8.5)."""
    return lenet(num_classes, in_channels, batch_norm=True, scratch_bn=scratch_bn)


# LeNet has no ImageNet configuration: build defaults to one channel and ten classes.
# The two forms are two families because they train with different learning rates.
# Chapter 5 trains LeNet-BN; the BN paper's own ImageNet network (BN-Inception) has no
# model in the book.
SPEC = register(Spec(
    family="lenet", chapter="05_batchnorm", imagenet=False,
    builders={"lenet": lenet}, small={"lenet": (28, {})},
    cpu=dict(epochs=10, batch_size=128, lr=0.9),
    gpu=dict(resolution=28, epochs=10, batch_size=256, lr=0.9),
))
SPEC_BN = register(Spec(
    family="lenet_bn", chapter="05_batchnorm", imagenet=False,
    builders={"lenet_bn": lenet_bn}, small={"lenet_bn": (28, {})},
    cpu=dict(epochs=4, batch_size=128, lr=0.1),
    gpu=dict(resolution=28, epochs=10, batch_size=256, lr=0.1),
    compared=(Compared("BN-Inception", None, "bn_inception",
                       note="no model (ch. 5 trains LeNet-BN)"),),
))
