"""LeNet-5 (LeCun et al., 1998) as in D2L §7.6, and with batch normalization (Ioffe & Szegedy, 2015 §4.1)."""

from __future__ import annotations

from torch import nn

from .batchnorm import BatchNorm


def lenet(num_classes: int = 10, in_channels: int = 1, batch_norm: bool = False, scratch_bn: bool = True,
          activation: str = "sigmoid") -> nn.Sequential:
    """Two 5×5 conv + average-pool stages, then 120-84-``num_classes`` fully connected layers (28×28 input).

    With ``batch_norm``, a BN follows every convolution and hidden linear layer, before the nonlinearity;
    ``scratch_bn`` picks our from-scratch :class:`BatchNorm` over ``nn.BatchNorm2d``.
    """
    act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}[activation]

    def norm(channels: int, dims: int) -> nn.Module:
        if not batch_norm:
            return nn.Identity()
        if scratch_bn:
            return BatchNorm(channels)
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)

    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2), norm(6, 2), act(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), norm(16, 2), act(), nn.AvgPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), norm(120, 1), act(),
        nn.Linear(120, 84), norm(84, 1), act(),
        nn.Linear(84, num_classes),
    )


def lenet_bn(num_classes: int = 10, in_channels: int = 1, scratch_bn: bool = True) -> nn.Sequential:
    """LeNet with BN after each convolution and hidden linear layer (D2L §8.5)."""
    return lenet(num_classes, in_channels, batch_norm=True, scratch_bn=scratch_bn)
