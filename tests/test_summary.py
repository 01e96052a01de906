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


def test_alexnet_layers_have_the_paper_names():
    from book import models

    model = models.build("alexnet")
    names = summary.layer_names(model)
    convs = [names[p] for p, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    linears = [names[p] for p, m in model.named_modules() if isinstance(m, nn.Linear)]
    assert convs == ["conv1", "conv2", "conv3", "conv4", "conv5"] and linears == ["fc6", "fc7", "fc8"]
    assert names["features.14"] == "pool5" and summary.paper_name(model, "features.3") == "pool1"
    table = summary.layer_table(model.features, (1, 3, 224, 224))
    assert table.row("0") == table.row("conv1") and table.row("4")[0] == "conv2"  # chapters look rows up by path
    assert "features.7" not in str(summary.layer_table(model, (1, 3, 224, 224), depth=2))


def test_names_follow_the_structure_not_a_list():
    from book import models
    from book.models.vgg import CONFIGS

    names = summary.layer_names(models.build("vgg16"))
    assert names["features.0"] == "conv1_1" and names["features.16"] == "pool3" and names["features.14"] == "conv3_3"
    deeper = models.VGG(CONFIGS["D"][:7] + [256] + CONFIGS["D"][7:])  # a fourth conv in block 3
    names = summary.layer_names(deeper)
    assert names["features.16"] == "conv3_4" and names["features.18"] == "pool3" and names["features.19"] == "conv4_1"
    assert names["classifier.0"] == "fc6"


def test_googlenet_inception_blocks_have_table_1_names():
    from book import models
    from book.models.googlenet import Inception

    model = models.build("googlenet")
    names = summary.layer_names(model)
    blocks = [names[p] for p, m in model.named_modules() if isinstance(m, Inception)]
    assert blocks == [f"inception {b}" for b in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]
    assert [names[f"stem.{i}"] for i in range(7)] == \
        ["conv1", "pool1", "norm1", "conv2 reduce", "conv2", "norm2", "pool2"]
    table = summary.layer_table(model, (1, 3, 224, 224), depth=2)
    assert table.row("inception 4e")[1] == "832×14×14" == table.row("blocks.inception4e")[1]


def test_stage_names_of_resnet_densenet_vit_coatnet_nin():
    from book import models

    resnet = summary.layer_names(models.build("resnet50"))
    assert resnet["layer1"] == "conv2_x" and resnet["layer3.5"] == "conv4_x block 6" and "layer3.6" not in resnet
    dense = summary.layer_names(models.build_small("densenet121"))
    assert dense["features.denseblock2"] == "dense block 2" and dense["features.transition3"] == "transition 3"
    vit = summary.layer_names(models.build_small("vit"))
    assert vit["patch_embed"] == "patch embed" and vit["blocks.2"] == "block 3" and "blocks.4" not in vit
    assert [summary.layer_names(models.build("coatnet"))[f"s{i}"] for i in range(5)] == ["S0", "S1", "S2", "S3", "S4"]
    nin = summary.layer_names(models.build("nin"))
    assert [nin[p] for p in ("features.0", "features.1", "features.4", "head.0")] == \
        ["mlpconv1", "pool1", "mlpconv3", "mlpconv4"]
    every = [summary.layer_names(models.build(n)) for n in ("alexnet", "googlenet", "resnet18", "densenet121")]
    assert all(len(set(names.values())) == len(names) for names in every)  # unique, so rows can be looked up
