"""Vision Transformer (Dosovitskiy et al., 2021): patches, a class token and pre-norm
encoder blocks."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .spec import Compared, Spec, register


@contextlib.contextmanager
def fp32_attention_on_cpu(*tensors: torch.Tensor):
    """Yield ``tensors`` in fp32 with bf16 autocast off when they are on the CPU;
    unchanged elsewhere.

    Why: PyTorch's CPU flash-attention kernel is slow in bf16. On our small ViT's shapes
    (128 images, 4 heads, 50 tokens of 16) forward and backward take 74 ms in bf16
    against 13 ms in fp32 (torch 2.14), which made bf16 training half as fast as fp32
    instead of faster (benchmarks/cpu_speed.py --model vit)."""
    if tensors[0].device.type != "cpu":
        yield tensors
        return
    with torch.autocast("cpu", enabled=False):
        yield tuple(t.float() for t in tensors)


class EncoderBlock(nn.Module):
    """x + MSA(LN(x)), then x + MLP(LN(x)) (Eq. 2–3): layer norm before each
    sublayer."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout,
                                               batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(mlp_dim, dim),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with fp32_attention_on_cpu(self.norm1(x)) as (y,):
            x = x + self.attention(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Patch embedding (a strided convolution), a learnable class token, learned 1-D
    position embeddings, ``depth`` encoder blocks and a linear head on the final class
    token (Eq. 1–4).

    The defaults are ViT-B/16 (Table 1: 12 layers, width 768, MLP 3072, 12 heads, 86M
    parameters).
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, *,
                 image_size: int = 224, patch_size: int = 16, dim: int = 768,
                 depth: int = 12, heads: int = 12, mlp_dim: int = 3072,
                 dropout: float = 0.0):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be a multiple of "
                             f"patch_size {patch_size}")
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, patch_size)
        num_patches = (image_size // patch_size) ** 2
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Parameter(torch.randn(1, num_patches + 1, dim) * 0.02)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads, mlp_dim, dropout)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """z0 of Eq. 1: the patches embedded, the class token in front, the position
        embeddings added."""
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (N, patches, dim)
        return (torch.cat([self.class_token.expand(len(x), -1, -1), x], 1)
                + self.position)


    def layer_names(self) -> dict[str, str]:
        """Patch embedding, encoder blocks 1…depth, the final norm and the head
        (Eq. 1–4)."""
        names = {"patch_embed": "patch embed", "blocks": "encoder",
                 "norm": "final norm", "head": "head"}
        names.update({f"blocks.{j}": f"block {int(j) + 1}"
                      for j, _ in self.blocks.named_children()})
        return names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.dropout(self.embed(x)))
        return self.head(self.norm(x[:, 0]))


def attention_maps(model: ViT, images: torch.Tensor) -> list[torch.Tensor]:
    """Each block's attention weights for ``images``: a list of (N, heads, tokens,
    tokens), token 0 the class token.

    The blocks run as in ``forward`` (eval mode); only the weights, which ``forward``
    never needs, are kept.
    """
    was_training = model.training
    model.eval()
    maps = []
    try:
        with torch.no_grad():
            x = model.embed(images)
            for block in model.blocks:
                y = block.norm1(x)
                out, weights = block.attention(y, y, y, need_weights=True,
                                               average_attn_weights=False)
                maps.append(weights)
                x = x + out
                x = x + block.mlp(block.norm2(x))
    finally:
        model.train(was_training)
    return maps


def attention_rollout(maps: list[torch.Tensor]) -> torch.Tensor:
    """How much the final class token draws on each patch, through every layer (Abnar &
    Zuidema 2020): average the heads, add the identity for the residual path,
    renormalise the rows, and multiply the layers' matrices. Returns (N, patches): the
    class token's row without its own entry."""
    rollout = None
    for weights in maps:
        mixed = weights.mean(1)
        mixed = mixed + torch.eye(mixed.shape[-1], device=mixed.device)
        mixed = mixed / mixed.sum(-1, keepdim=True)
        rollout = mixed if rollout is None else mixed @ rollout
    return rollout[:, 0, 1:]


def paper_table():
    """Table 1: layers, width, MLP size, heads and parameters of ViT-Base, Large and
    Huge, counted."""
    from .. import papers
    from ..summary import Table

    table = Table(["model", "layers", "D", "MLP", "heads", "params M (ours)",
                   "params M (paper)"],
                  title="ViT, Table 1 (B/16, L/16, H/14 at 224 px)")
    for name, (depth, dim, mlp, heads, paper) in papers.VIT_TABLE1.items():
        with torch.device("meta"):  # counting parameters needs no memory for them
            model = ViT(patch_size=papers.VIT_PATCH[name], dim=dim, depth=depth,
                        heads=heads, mlp_dim=mlp)
        table.rows.append([name, depth, dim, mlp, heads,
                           round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
                           paper / 1e6])
    return table


SPEC = register(Spec(
    # ViT and CoAtNet share one chapter, with two claim studies: 2 epochs and 1 keep it
    # within 10 minutes.
    family="vit", chapter="08_vit_coatnet", model_class=ViT, diagram_depth=1,
    paper_table=paper_table,
    # one encoder block: its two residual additions (Eq. 2–3)
    diagram_block=("blocks.0", 1),
    builders={"vit": ViT},
    small={"vit": (28, dict(image_size=28, patch_size=4, dim=64, depth=4, heads=4,
                            mlp_dim=128))},
    cpu=dict(epochs=1, batch_size=128, lr=2e-3, optimizer="adamw", weight_decay=0.05),
    gpu=dict(resolution=96, epochs=10, batch_size=128, lr=1e-3, optimizer="adamw",
             weight_decay=0.05,
             options=(("image_size", 96), ("patch_size", 16), ("dim", 512),
                      ("depth", 2), ("heads", 8), ("mlp_dim", 2048))),
    compared=(Compared("ViT-B/16", "vit", "vit", trained=True),),
))
