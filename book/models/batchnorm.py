"""Batch normalization from scratch (Ioffe & Szegedy, 2015) and folding a trained BN
into a convolution."""

from __future__ import annotations

import torch
from torch import nn


class BatchNorm(nn.Module):
    """Batch normalization over the channel axis of (N, C) or (N, C, H, W) inputs.

    Training follows Algorithm 1: normalise with the mini-batch mean and (biased)
    variance. The moving averages use the unbiased variance m/(m-1)·σ²_B, as Algorithm 2
    step 10 asks, and inference applies the affine map
    y = γ/√(Var+ε)·x + (β − γ·E/√(Var+ε)) of Algorithm 2 step 11. State-dict keys match
    ``nn.BatchNorm2d`` so weights move freely between the two.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))   # γ
        self.bias = nn.Parameter(torch.zeros(num_features))    # β
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def _shape(self, x: torch.Tensor) -> tuple[list[int], list[int]]:
        if x.dim() not in (2, 4):
            raise ValueError("BatchNorm expects (N, C) or (N, C, H, W) input, "
                             f"got shape {tuple(x.shape)}")
        reduce = [0] if x.dim() == 2 else [0, 2, 3]
        view = [1, -1] + [1] * (x.dim() - 2)
        return reduce, view

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduce, view = self._shape(x)
        # statistics in fp32, also under bf16 autocast (as nn.BatchNorm computes them)
        x = x.float()
        if self.training:
            mean = x.mean(dim=reduce)
            var = x.var(dim=reduce, unbiased=False)
            m = x.numel() // x.shape[1]  # values per channel in this mini-batch
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * m / (m - 1), self.momentum)
                self.num_batches_tracked += 1
            return ((x - mean.view(view)) / torch.sqrt(var.view(view) + self.eps)
                    * self.weight.view(view) + self.bias.view(view))
        scale = self.weight / torch.sqrt(self.running_var + self.eps)
        shift = self.bias - scale * self.running_mean
        return x * scale.view(view) + shift.view(view)

    def extra_repr(self) -> str:
        return f"{len(self.weight)}, eps={self.eps}, momentum={self.momentum}"


@torch.no_grad()
def fold_batchnorm(conv: nn.Conv2d, bn: nn.Module) -> nn.Conv2d:
    """A convolution equal to ``bn(conv(x))`` in eval mode (§3.1: BN is a fixed affine
    map at inference)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                       conv.padding, conv.dilation, conv.groups, bias=True,
                       padding_mode=conv.padding_mode)
    folded = folded.to(conv.weight.device, conv.weight.dtype)
    folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    folded.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return folded


@torch.no_grad()
def fold_linear_batchnorm(linear: nn.Linear, bn: nn.Module) -> nn.Linear:
    """A linear layer equal to ``bn(linear(x))`` in eval mode: the same fold as for a
    convolution."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    folded = nn.Linear(linear.in_features, linear.out_features).to(linear.weight.device,
                                                                   linear.weight.dtype)
    folded.weight.copy_(linear.weight * scale.view(-1, 1))
    bias = linear.bias if linear.bias is not None else torch.zeros_like(bn.running_mean)
    folded.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return folded


def fold_network(model: nn.Sequential) -> nn.Sequential:
    """A copy of ``model`` for inference in which every convolution or linear layer
    followed directly by a batch norm absorbs it (Algorithm 2, step 11: at inference BN
    is a fixed affine map)."""
    norms = (BatchNorm, nn.BatchNorm1d, nn.BatchNorm2d)
    layers, modules, i = [], list(model), 0
    while i < len(modules):
        layer, following = modules[i], modules[i + 1] if i + 1 < len(modules) else None
        if isinstance(following, norms) and isinstance(layer, (nn.Conv2d, nn.Linear)):
            fold = fold_batchnorm if isinstance(layer, nn.Conv2d) else fold_linear_batchnorm
            layers.append(fold(layer, following))
            i += 2
        else:
            layers.append(layer)
            i += 1
    return nn.Sequential(*layers).eval()


def figure1_mlp(batch_norm: bool, hidden: int = 100, depth: int = 3,
                inputs: int = 28 * 28, num_classes: int = 10,
                std: float = 0.01) -> nn.Sequential:
    """The network of §4.1 and Figure 1: ``depth`` fully connected hidden layers of
    ``hidden`` sigmoid units, then a linear layer to the classes; with ``batch_norm``, a
    BN on every hidden layer's input to its sigmoid. The paper's weights are "small
    random Gaussian values": here N(0, ``std``)."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = inputs
    for _ in range(depth):
        layers += ([nn.Linear(width, hidden)]
                   + ([BatchNorm(hidden)] if batch_norm else []) + [nn.Sigmoid()])
        width = hidden
    layers.append(nn.Linear(width, num_classes))
    net = nn.Sequential(*layers)
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)
    return net
