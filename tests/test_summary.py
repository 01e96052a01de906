"""book.summary: counts measured by FlopCounterMode."""

import torch
import torchvision
from torch import nn

from book import summary


def test_resnet18_counts_match_torchvision_published_figures():
    counts = summary.count(torchvision.models.resnet18(), (1, 3, 224, 224))
    assert counts["params"] == 11_689_512
    assert abs(counts["macs"] / 1e9 - 1.81) < 0.01


def test_layer_table_rows_add_up_to_the_total():
    model = torchvision.models.resnet18()
    table = summary.layer_table(model, (1, 3, 224, 224))
    total = table.row("total")
    assert sum(table.column("params")[:-1]) == total[2]
    assert sum(table.column("macs")[:-1]) == total[3]
    assert table.row("layer4")[1] == "512×7×7"
    assert "layer4" in str(table) and "<table>" in table._repr_html_()


def test_count_a_linear_layer_by_definition():
    counts = summary.count(nn.Linear(20, 30), (4, 20))
    assert counts == {"params": 20 * 30 + 30, "macs": 4 * 20 * 30}


def test_count_keeps_training_mode():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Dropout())
    summary.count(model, (1, 1, 8, 8))
    assert model.training
    model.eval()
    summary.count(model, (1, 1, 8, 8))
    assert not model.training
    assert torch.is_grad_enabled()
