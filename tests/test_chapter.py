"""The chapter kit: the claim verdicts and their statistics (pure arithmetic, no training), and the probe."""

import statistics

import pytest
import torch
from torch import nn

from book import chapter, models
from book.runtime import Runtime


def test_verdict_needs_the_difference_to_exceed_the_spread():
    assert chapter.verdict(0.05, 0.01) == "holds"
    assert chapter.verdict(-0.05, 0.01) == "does not hold"
    assert chapter.verdict(0.01, 0.05) == "inconclusive at this scale"
    assert chapter.verdict(0.05, 0.05) == "inconclusive at this scale"  # equal is not larger


def test_claim_result_statistics_and_direction():
    values = {"a": [0.90, 0.92, 0.94], "b": [0.80, 0.85, 0.90]}
    result = chapter.ClaimResult("a beats b", "accuracy", values, better="a", worse="b")
    assert result.mean_sd("a") == pytest.approx((0.92, statistics.stdev(values["a"])))
    assert result.difference == pytest.approx(0.92 - 0.85)
    assert result.spread == pytest.approx((statistics.stdev(values["a"]) ** 2 + 0.05 ** 2) ** 0.5)
    assert result.verdict == "holds"
    # Lower is better (steps to an error): the same numbers now speak against the claim.
    steps = chapter.ClaimResult("a is faster", "steps", values, better="a", worse="b", higher_is_better=False)
    assert steps.difference == pytest.approx(-(0.92 - 0.85))
    assert steps.verdict == "does not hold"


def test_claim_study_runs_every_side_per_seed_and_judges_another_metric(capsys):
    calls = []

    def side(offset):
        def run(seed):
            calls.append((offset, seed))
            return dict(test=offset + 0.001 * seed, gap=0.1 - offset)
        return run

    result = chapter.claim_study("x beats y", {"x": side(0.9), "y": side(0.5)}, metric="test accuracy",
                                 key="test", better="x", worse="y", plot=False)
    assert calls == [(0.9, 0), (0.9, 1), (0.9, 2), (0.5, 0), (0.5, 1), (0.5, 2)]
    assert result.verdict == "holds"
    assert "x, seed 2" in capsys.readouterr().out
    gap = result.on("gap", "x overfits less", higher_is_better=False)
    assert gap.values["x"] == pytest.approx([0.1 - 0.9] * 3)
    assert gap.verdict == "holds"


def test_first_layer_probe_copies_the_papers_first_layer():
    probe = chapter.first_layer_probe("alexnet")
    conv = probe[0]
    assert isinstance(conv, nn.Conv2d)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (3, 96, (11, 11), (4, 4))
    assert conv.weight.std().item() == pytest.approx(0.01, rel=0.05)  # N(0, 0.01), §5
    assert probe(torch.randn(2, 3, 64, 64)).shape == (2, 10)
    assert chapter.first_layer_probe("googlenet")[0].kernel_size == (7, 7)


def test_figure1_cnn_has_four_layers_and_the_papers_initialisation():
    net = models.alexnet.figure1_cnn("tanh")
    layers = [m for m in net if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 4
    assert all(abs(m.weight.std().item() - 0.01) < 0.002 and m.bias.abs().max() == 0 for m in layers)
    assert any(isinstance(m, nn.Tanh) for m in net) and not any(isinstance(m, nn.ReLU) for m in net)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_probe_filters_are_cached_and_shared_by_chapters_with_the_same_conv1(tmp_path, monkeypatch, capsys):
    runtime = Runtime.detect("smoke")
    real = chapter._probe_cache
    monkeypatch.setattr(chapter, "_probe_cache", lambda *a: tmp_path / real(*a).name)
    googlenet = chapter.first_layer_filters("googlenet", runtime=runtime)
    assert "probe: 1 epochs" in capsys.readouterr().out and len(list(tmp_path.iterdir())) == 1
    resnet = chapter.first_layer_filters("resnet18", runtime=runtime)  # the same 7×7/2, 64-channel conv1
    assert "loaded from the cache" in capsys.readouterr().out
    assert torch.equal(googlenet.weight, resnet.weight)
    chapter.first_layer_filters("alexnet", runtime=runtime)  # 11×11/4, 96 channels: a probe of its own
    assert len(list(tmp_path.iterdir())) == 2


def test_dense_feature_reuse_reads_each_source_of_each_block():
    from book import studies
    net = models.build_small("densenet121")  # blocks of 3, 6, 12, 8 layers
    maps = studies.dense_feature_reuse(net)
    assert [m.shape for m in maps] == [(4, 4), (7, 7), (13, 13), (9, 9)]
    first = maps[0]
    assert torch.isnan(first[1:, 0]).all() and not torch.isnan(first[:, -1]).any()  # layer 1 sees only the input
    layer2 = net.features.denseblock1.denselayer2.conv1.weight.flatten(1)
    inputs = net.features.denseblock1.denselayer1.conv1.in_channels
    assert first[0, 1] == pytest.approx(layer2[:, :inputs].abs().mean().item())
    nn.init.zeros_(layer2[:, inputs:])  # a layer that ignores layer 1's maps shows a zero there
    assert studies.dense_feature_reuse(net)[0][1, 1] == 0


def test_peak_training_memory_grows_with_the_batch():
    from book import studies
    options = dict(depth=8, in_channels=1, widths=(8, 16, 32))
    held = torch.ones(200_000_000)  # 800 MB in this process: a child must not count them (fork keeps peaks)
    small, large = (studies.peak_training_memory("book.models.resnet:cifar_resnet", options, batch=b)
                    for b in (16, 512))
    assert large > 4 * max(small, 1 << 20)
    assert small < 200 << 20, "the parent's memory leaked into the measurement"
    del held
    with pytest.raises(RuntimeError, match="failed"):
        studies.peak_training_memory("book.models.resnet:no_such_builder", {})


def test_training_error_curve_and_gradient_norms_measure_a_real_network():
    from book import studies
    from book.models.resnet import cifar_resnet
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 12, 12), torch.randint(0, 10, (64,))
    loader = [(x, y)]  # one batch again and again: the error must fall
    record = studies.training_error_curve(cifar_resnet(8, in_channels=1), loader, steps=40, lr=0.05, every=10)
    assert record["steps"] == [10, 20, 30, 40] and record["train_error"][-1] < record["train_error"][0]
    norms = studies.gradient_norms(cifar_resnet(8, in_channels=1), x, y)
    assert len(norms) == 7 and all(v > 0 for v in norms.values())


def test_train_subset_trains_on_the_first_images_of_each_class(monkeypatch):
    """Real Fashion-MNIST, a tiny network: only ``per_class`` changes the data, and the record is complete."""
    study = chapter.Study(Runtime.detect("smoke"), resolution=28)
    seen = []

    def build():
        net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
        net.register_forward_pre_hook(lambda m, inputs: seen.append(len(inputs[0])))
        return net

    record = study.train_subset(build, 0, per_class=3, epochs=2, lr=0.1)
    assert set(record) == {"train_loss", "train", "test", "gap"}
    assert record["gap"] == pytest.approx(record["train"] - record["test"])
    assert 0 <= record["test"] <= 1 and record["train_loss"] > 0
    # 30 training images in batches of 64: one batch an epoch, then the evaluations of 30 and of the test set.
    assert seen[:2] == [30, 30] and seen[2] == 30 and sum(seen[3:]) == len(study.test_set)
