"""Weight initialisation shared by the models that train without batch normalization."""

from __future__ import annotations

from torch import nn


def he_init(model: nn.Module, layers: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)) -> None:
    """He et al. (2015) normal initialisation for ReLU networks, zero biases.

    PyTorch's default initialisation shrinks the signal at every ReLU layer, so deep stacks without
    BN (NiN, GoogLeNet, AlexNet) start nearly silent and train slowly.
    """
    for m in model.modules():
        if isinstance(m, layers):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
