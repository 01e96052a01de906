"""LeNet-5 (LeCun et al., 1998) as in D2L §7.6, and with batch normalization (Ioffe & Szegedy, 2015 §4.1)."""

from __future__ import annotations

from torch import nn

from .batchnorm import BatchNorm


def lenet(num_classes: int = 10, in_channels: int = 1, batch_norm: bool = False, scratch_bn: bool = True,
          activation: str = "sigmoid", bn_position: str = "before") -> nn.Sequential:
    """Two 5×5 conv + average-pool stages, then 120-84-``num_classes`` fully connected layers (28×28 input).

    With ``batch_norm``, a BN follows every convolution and hidden linear layer, before the nonlinearity
    as the paper places it (§3.2), or after it with ``bn_position="after"``; ``scratch_bn`` picks our
    from-scratch :class:`BatchNorm` over ``nn.BatchNorm2d``.
    """
    if bn_position not in ("before", "after"):
        raise ValueError(f"bn_position must be 'before' or 'after' the nonlinearity, not {bn_position!r}")
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
