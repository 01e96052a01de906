"""Batch normalization from scratch (Ioffe & Szegedy, 2015) and folding a trained BN into a convolution."""

from __future__ import annotations

import torch
from torch import nn


class BatchNorm(nn.Module):
    """Batch normalization over the channel axis of (N, C) or (N, C, H, W) inputs.

    Training follows Algorithm 1: normalise with the mini-batch mean and (biased) variance.
    The moving averages use the unbiased variance m/(m-1)·σ²_B, as Algorithm 2 step 10 asks, and
    inference applies the affine map y = γ/√(Var+ε)·x + (β − γ·E/√(Var+ε)) of Algorithm 2 step 11.
    State-dict keys match ``nn.BatchNorm2d`` so weights move freely between the two.
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
            raise ValueError(f"BatchNorm expects (N, C) or (N, C, H, W) input, got shape {tuple(x.shape)}")
        reduce = [0] if x.dim() == 2 else [0, 2, 3]
        view = [1, -1] + [1] * (x.dim() - 2)
        return reduce, view

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduce, view = self._shape(x)
        x = x.float()  # statistics in fp32, also under bf16 autocast (as nn.BatchNorm computes them)
        if self.training:
            mean = x.mean(dim=reduce)
            var = x.var(dim=reduce, unbiased=False)
            m = x.numel() // x.shape[1]  # values per channel in this mini-batch
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * m / (m - 1), self.momentum)
                self.num_batches_tracked += 1
            return (x - mean.view(view)) / torch.sqrt(var.view(view) + self.eps) * self.weight.view(view) + self.bias.view(view)
        scale = self.weight / torch.sqrt(self.running_var + self.eps)
        shift = self.bias - scale * self.running_mean
        return x * scale.view(view) + shift.view(view)

    def extra_repr(self) -> str:
        return f"{len(self.weight)}, eps={self.eps}, momentum={self.momentum}"


@torch.no_grad()
def fold_batchnorm(conv: nn.Conv2d, bn: nn.Module) -> nn.Conv2d:
    """A convolution equal to ``bn(conv(x))`` in eval mode (§3.1: BN is a fixed affine map at inference)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    folded = folded.to(conv.weight.device, conv.weight.dtype)
    folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    folded.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return folded
