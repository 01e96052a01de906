"""CoAtNet (Dai, Liu, Le & Tan, 2021): convolution stages, then relative-attention
transformer stages (C-C-T-T)."""

from __future__ import annotations

import re

import torch
from torch import nn

from .vit import fp32_attention_on_cpu
from .spec import Compared, Spec, register

# Table 3: blocks per stage S0..S4 and channels per stage. CoAtNet-0 is the smallest in
# the paper.
CONFIGS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "coatnet0": ((2, 2, 3, 5, 2), (64, 96, 192, 384, 768)),
    "coatnet_tiny": ((1, 1, 1, 1, 1), (16, 32, 64, 96, 128)),  # ours, for Fashion-MNIST on a CPU
}


class SqueezeExcite(nn.Module):
    """Channel gating from global context (Hu et al., 2018), part of MBConv."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                  nn.Conv2d(channels, reduced, 1), nn.GELU(),
                                  nn.Conv2d(reduced, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class MBConv(nn.Module):
    """Pre-norm inverted bottleneck: 1×1 expand ×4, 3×3 depthwise, SE, 1×1 project
    (§2.1; Appendix A.1).

    When downsampling, x ← Proj(Pool(x)) + Conv(DepthConv(Conv(Norm(x), stride=2)))
    (Appendix A.1, Eq. 5). The expansion is 4× the block's *output* channels: with it,
    moving the stride into the depthwise convolution adds the 0.4 G multiply-adds that
    Table 9 reports for CoAtNet-0 (4.2 B → 4.6 B).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 expansion: int = 4, stride_on: str = "1x1"):
        super().__init__()
        if stride_on not in ("1x1", "depthwise"):
            raise ValueError("stride_on is '1x1' (Eq. 5) or 'depthwise' (Table 9's "
                             f"variant, timm's), not {stride_on!r}")
        hidden = out_channels * expansion
        first, depthwise = (stride, 1) if stride_on == "1x1" else (1, stride)
        self.shortcut = (
            nn.Identity() if stride == 1 and in_channels == out_channels
            else nn.Sequential(
                nn.MaxPool2d(3, stride, 1) if stride > 1 else nn.Identity(),
                nn.Conv2d(in_channels, out_channels, 1)))
        self.residual = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, hidden, 1, first, bias=False),
            nn.BatchNorm2d(hidden), nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, depthwise, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.GELU(),
            SqueezeExcite(hidden, max(1, in_channels // 4)),
            nn.Conv2d(hidden, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.residual(x)


class RelativeAttention(nn.Module):
    """Multi-head self-attention whose logits add a learned bias w[i−j] per relative 2-D
    offset (Eq. 3)."""

    def __init__(self, dim: int, out_dim: int, size: int, head_dim: int = 32):
        super().__init__()
        self.heads = max(1, dim // head_dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, out_dim)
        # One bias per head for each of the (2H−1)(2W−1) offsets; an index maps pairs
        # (i, j) to offsets.
        self.bias_table = nn.Parameter(torch.zeros(self.heads, (2 * size - 1) ** 2))
        coords = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size),
                                            indexing="ij")).flatten(1)
        # (2, HW, HW), each in [0, 2size−2]
        offset = coords[:, :, None] - coords[:, None, :] + size - 1
        self.register_buffer("bias_index", offset[0] * (2 * size - 1) + offset[1],
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, dim = x.shape
        q, k, v = self.qkv(x).view(n, tokens, 3, self.heads,
                                   dim // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.bias_table[:, self.bias_index]  # (heads, HW, HW)
        # SDPA scales the logits by 1/sqrt(head dim), the usual scaling Eq. 3 leaves implicit
        with fp32_attention_on_cpu(q, k, v, bias) as (q, k, v, bias):
            out = nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=bias.unsqueeze(0).to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(n, tokens, dim))


class TransformerBlock(nn.Module):
    """Pre-norm relative-attention block and MLP; x ← Proj(Pool(x)) +
    Attention(Pool(Norm(x))) when downsampling (Appendix A.1, Eq. 4)."""

    def __init__(self, in_channels: int, out_channels: int, size: int,
                 downsample: bool):
        super().__init__()
        self.pool = nn.MaxPool2d(3, 2, 1) if downsample else nn.Identity()
        self.shortcut = (nn.Conv2d(in_channels, out_channels, 1)
                         if in_channels != out_channels else nn.Identity())
        self.norm1 = nn.LayerNorm(in_channels)
        self.attention = RelativeAttention(in_channels, out_channels, size)
        self.norm2 = nn.LayerNorm(out_channels)
        self.mlp = nn.Sequential(nn.Linear(out_channels, 4 * out_channels), nn.GELU(),
                                 nn.Linear(4 * out_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Eq. 4 normalises before it pools: Attention(Pool(Norm(x))), beside the
        # shortcut Proj(Pool(x)).
        normalised = self.norm1(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        x, normalised = self.pool(x), self.pool(normalised)
        n, _, h, w = x.shape
        shortcut = self.shortcut(x).flatten(2).transpose(1, 2)
        tokens = shortcut + self.attention(normalised.flatten(2).transpose(1, 2))
        tokens = tokens + self.mlp(self.norm2(tokens))
        return tokens.transpose(1, 2).reshape(n, -1, h, w)


class CoAtNet(nn.Module):
    """S0 convolution stem, then stages S1–S4, each halving the size: MBConv (C) or
    relative-attention transformer (T) blocks as ``layout`` says. The paper's choice is
    C-C-T-T (§2.2, Figure 1 compares C-C-C-C, C-C-C-T, C-C-T-T, C-T-T-T and an
    all-transformer).

    ``stem="small"`` makes S0's first convolution stride 1, for 28–32 px images: S3 and
    S4 then still see 4×4 and 2×2 positions instead of 2×2 and 1×1. ``stride_on`` says
    which convolution of a downsampling MBConv has stride 2: the first 1×1, as Eq. 5 has
    it, or the depthwise 3×3 (Table 9).
    """

    def __init__(self, blocks: tuple[int, ...], channels: tuple[int, ...],
                 num_classes: int = 1000, in_channels: int = 3, *,
                 image_size: int = 224, layout: str = "CCTT", stem: str = "paper",
                 stride_on: str = "1x1"):
        super().__init__()
        if len(layout) != 4 or set(layout) - {"C", "T"}:
            raise ValueError("layout names stages S1–S4 with C (MBConv) or T "
                             f"(transformer), like 'CCTT', not {layout!r}")
        if stem not in ("paper", "small"):
            raise ValueError(f"stem is 'paper' (stride 2) or 'small' (stride 1), not {stem!r}")
        first_stride = 2 if stem == "paper" else 1
        if image_size % (16 * first_stride):
            raise ValueError(f"image_size must be a multiple of {16 * first_stride} "
                             f"(the stages halve it), not {image_size}")
        self.layout = layout
        stem_layers = [nn.Conv2d(in_channels, channels[0], 3, first_stride, 1),
                       nn.BatchNorm2d(channels[0]), nn.GELU()]
        for _ in range(1, blocks[0]):
            stem_layers += [nn.Conv2d(channels[0], channels[0], 3, 1, 1),
                            nn.BatchNorm2d(channels[0]), nn.GELU()]
        self.s0 = nn.Sequential(*stem_layers)
        size = image_size // first_stride
        stages = []
        for i, kind in zip((1, 2, 3, 4), layout):
            size //= 2
            layers = []
            for j in range(blocks[i]):
                c_in = channels[i - 1] if j == 0 else channels[i]
                if kind == "C":
                    layers.append(MBConv(c_in, channels[i], stride=2 if j == 0 else 1,
                                         stride_on=stride_on))
                else:
                    layers.append(TransformerBlock(c_in, channels[i], size,
                                                   downsample=(j == 0)))
            stages.append(nn.Sequential(*layers))
        self.s1, self.s2, self.s3, self.s4 = stages
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.LayerNorm(channels[-1]),
                                  nn.Linear(channels[-1], num_classes))


    def layer_names(self) -> dict[str, str]:
        """Table 3: stages S0…S4 and the blocks of S1…S4."""
        names = {}
        for key, stage in self.named_children():
            if re.fullmatch(r"s\d", key):
                names[key] = key.upper()
                if key != "s0":
                    names.update({f"{key}.{j}": f"{key.upper()} block {int(j) + 1}"
                                  for j, _ in stage.named_children()})
        return names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.s4(self.s3(self.s2(self.s1(self.s0(x))))))


def coatnet(num_classes: int = 1000, in_channels: int = 3, *, config: str = "coatnet0",
            **options) -> CoAtNet:
    """CoAtNet-0 of Table 3 (``config="coatnet0"``), or our ``coatnet_tiny`` for
    Fashion-MNIST on a CPU."""
    if config not in CONFIGS:
        raise ValueError(f"config must be one of {', '.join(CONFIGS)}, not {config!r}")
    blocks, channels = CONFIGS[config]
    return CoAtNet(blocks, channels, num_classes, in_channels, **options)


def paper_table():
    """Table 4: CoAtNet-0's parameters and FLOPs at 224 px, ours beside the paper's and timm's."""
    from .. import papers
    from ..summary import Table, count

    table = Table(["model", "params M (ours)", "params M (paper)", "params M (timm)",
                   "GMACs (ours)", "GFLOPs (paper)", "GMACs (timm)"],
                  title="CoAtNet-0, Table 4 (224 px)")
    ours = count(coatnet(), (1, 3, 224, 224))
    paper_params, paper_flops, _ = papers.COATNET_TABLE4["CoAtNet-0"]
    timm_params, timm_macs = papers.COATNET0_TIMM
    table.rows.append(["CoAtNet-0", round(ours["params"] / 1e6, 2), paper_params / 1e6,
                       timm_params / 1e6, round(ours["macs"] / 1e9, 2),
                       paper_flops / 1e9, timm_macs / 1e9])
    return table


SPEC = register(Spec(
    # CoAtNet-0 is too wide for small images: the small configuration (and the gpu
    # recipe at 96 px) trains ``config="coatnet_tiny"``, named in the options so that
    # every recipe shown says so.
    family="coatnet", chapter="08_vit_coatnet", model_class=CoAtNet, diagram_depth=1,
    paper_table=paper_table,
    # S0 is the convolution stem; S1–S4 are MBConv (C) or transformer (T) stages as
    # ``layout`` says
    diagram_tags=lambda model: {
        "s0": "C", **{f"s{i}": kind for i, kind in enumerate(model.layout, 1)}},
    # one MBConv: its pooled projection shortcut beside the inverted bottleneck
    diagram_block=("s1.0", 2),
    builders={"coatnet": coatnet},
    small={"coatnet": (32, dict(config="coatnet_tiny", image_size=32, stem="small"))},
    cpu=dict(epochs=1, batch_size=128, lr=2e-3, optimizer="adamw", weight_decay=0.05,
             train_per_class=3000),  # half the training set: ch08 trains three networks
    gpu=dict(resolution=96, epochs=10, batch_size=128, lr=1e-3, optimizer="adamw",
             weight_decay=0.05,
             options=(("config", "coatnet_tiny"), ("image_size", 96))),
    compared=(Compared("CoAtNet-0", "coatnet", "coatnet", trained=True),),
))
