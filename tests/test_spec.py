"""The architecture registry (book.models.spec): every table the book keeps about a model comes from its Spec."""

import importlib
import sys

import pytest
import torch
from torch import nn

from book import cli, compare, diagram, models, profiles, summary
from book.models import spec as registry


@pytest.fixture
def toy():
    """Register the toy architecture of tests/toy_architecture.py for one test, then remove it again."""
    sys.modules.pop("toy_architecture", None)
    module = importlib.import_module("toy_architecture")
    yield module
    registry.unregister("toy")
    sys.modules.pop("toy_architecture", None)


def test_a_toy_architecture_in_one_file_is_seen_everywhere(toy, tmp_path, capsys, monkeypatch):
    assert "toy" in models.names() and models.spec_for("toy") is toy.SPEC
    # build and build_small
    assert models.build("toy")(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)
    small = models.build_small("toy")
    assert small.body[0].out_channels == 4 and models.small_resolution("toy") == 28
    # the profiles' recipes
    assert profiles.recipe("toy", "cpu") == profiles.Recipe(model="toy", resolution=28, epochs=2, batch_size=32,
                                                            lr=0.05)
    assert profiles.recipe("toy", "smoke").epochs == 1 and profiles.recipe("toy", "gpu").resolution == 64
    # layer names, paper table and diagram depth
    assert summary.layer_names(small)["body"] == "toy body"
    assert summary.layer_table(small, (1, 1, 28, 28)).row("toy head")[2] == 4 * 10 + 10
    assert summary.paper_comparison("toy").rows[0][0] == "toy"
    assert models.spec_of(small).diagram_depth == 2
    # the comparison: its row, built and counted at 224 px, waiting for its chapter's run
    chosen = [a for a in compare.all_architectures() if a.label == "Toy-1"]
    assert chosen == [compare.Architecture("Toy-1", "toy", "alexnet", "toy", "99_toy")]
    assert "99_toy" in compare.trained_chapters()
    measured = compare.costs(compare.build_all(chosen))
    rows = compare.comparison(compare.StoredRuns(), measured, architectures=chosen)
    assert rows[0].params == sum(p.numel() for p in models.build("toy").parameters())
    assert rows[0].status == "no run in 99_toy"
    # the command line: it is a choice of --model, and it trains (smoke profile, real Fashion-MNIST)
    out = tmp_path / "toy.json"
    assert cli.main(["train", "--model", "toy", "--profile", "smoke", "--out", str(out)]) == 0
    assert "toy on fashion-mnist" in capsys.readouterr().out and out.exists()


def test_without_the_toy_nothing_of_it_remains():
    assert "toy" not in models.names()
    assert all(a.label != "Toy-1" for a in compare.all_architectures())


def test_every_spec_is_complete_and_its_names_unique():
    names = models.names()
    assert len(names) == len(set(names))
    for spec in models.specs():
        assert spec.chapter and spec.cpu and spec.gpu, spec.family
        for name in spec.builders:
            side, _options = spec.small[name]
            assert side in (28, 32)
            assert isinstance(models.build_small(name), nn.Module)


def test_a_spec_with_a_taken_name_or_no_small_configuration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.Spec("resnet", "06", {}, {}, {}, {}))
    with pytest.raises(ValueError, match="already registered by another family: resnet18"):
        registry.register(registry.Spec("other", "06", {"resnet18": nn.Identity}, {"resnet18": (28, {})}, {}, {}))
    with pytest.raises(ValueError, match="small configuration"):
        registry.Spec("other", "06", {"x": nn.Identity}, {}, {}, {})


def test_the_coatnet_configuration_is_named_not_swapped():
    """build no longer replaces CoAtNet-0 by coatnet_tiny below 224 px: the small options name it."""
    assert models.small_options("coatnet")["config"] == "coatnet_tiny"
    assert dict(profiles.recipe("coatnet", "gpu").options)["config"] == "coatnet_tiny"
    tiny = models.build_small("coatnet")
    paper_at_32 = models.build("coatnet", 10, 1, image_size=32, stem="small")
    assert sum(p.numel() for p in paper_at_32.parameters()) > 10 * sum(p.numel() for p in tiny.parameters())
    with pytest.raises(ValueError, match="config must be one of"):
        models.build("coatnet", config="coatnet9")
