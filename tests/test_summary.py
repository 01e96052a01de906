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


def test_receptive_field_is_measured_not_assumed():
    from book.models.vgg import make_features

    for seed in range(20):  # random weights: no seed may leave the centre without a gradient
        torch.manual_seed(seed)
        assert summary.receptive_field(make_features([8, 8], in_channels=8), (1, 8, 24, 24)) == (5, 5)
    assert summary.receptive_field(nn.Conv2d(2, 2, 7, padding=3), (1, 2, 24, 24)) == (7, 7)
    strided = nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1), nn.Conv2d(1, 1, 3, 1, 1))
    assert summary.receptive_field(strided, (1, 1, 33, 33)) == (7, 7)  # 3 + (3 − 1)·2


def test_feature_explorer_shows_a_fully_connected_layer_and_its_label_matches():
    import matplotlib
    matplotlib.use("Agg")
    from torch import nn

    from book import models, viz

    model = models.build_small("alexnet").eval()
    relus = [name for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
    box = viz.feature_explorer(model, torch.randn(2, 1, 32, 32), relus)
    image_slider, layer_menu, channel_slider = box.children[0].children
    channel_slider.max = 5
    channel_slider.value = 5
    layer_menu.value = relus[-1]  # classifier ReLU: a 1-D output, which used to raise
    assert channel_slider.disabled and channel_slider.max == 0
    layer_menu.value = relus[0]
    assert not channel_slider.disabled and channel_slider.max > 0
