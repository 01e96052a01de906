"""A toy architecture in one file, as a new chapter would add one: its module, builder and ``Spec``.

Importing this module registers it; ``tests/test_spec.py`` checks that the CLI, the profiles, the layer
names, the diagram depth and the comparison all see it with no other edit. A synthetic stand-in: it
exists to test the registry's mechanics, not to teach anything.
"""

from __future__ import annotations

import torch
from torch import nn

from book.models.spec import Compared, Spec, register


class Toy(nn.Module):
    """One convolution and a linear head."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, *, width: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

    def layer_names(self) -> dict[str, str]:
        return {"body": "toy body", "head": "toy head"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def paper_table():
    from book.summary import Table, count

    table = Table(["model", "params (ours)"], title="Toy")
    table.rows.append(["toy", count(Toy(), (1, 3, 32, 32))["params"]])
    return table


SPEC = register(Spec(
    family="toy", chapter="99_toy", model_class=Toy, diagram_depth=2, paper_table=paper_table,
    builders={"toy": Toy},
    small={"toy": (28, dict(width=4))},
    cpu=dict(epochs=2, batch_size=32, lr=0.05),
    gpu=dict(resolution=64, epochs=3, batch_size=64, lr=0.05),
    compared=(Compared("Toy-1", "toy", "alexnet", trained=True),),  # AlexNet's paper row stands in for a paper
))
