"""The chapter kit: the claim verdicts and their statistics (pure arithmetic, no training), and the probe."""

import statistics

import pytest
import torch
from torch import nn

from book import chapter, models


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
