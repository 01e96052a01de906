"""book.diagram: block diagrams drawn from the model, named as in the papers, true to its shapes."""

import re
import shutil

import pytest
import torch
from torch import nn

from book import diagram, models, summary

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def _text(svg: str) -> list[str]:
    """The text of every label, unescaped, in order."""
    return [t.replace("&#45;", "-").replace("&amp;", "&") for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def _shapes(model: nn.Module, input_size, paths) -> dict[str, str]:
    """Output shapes of ``paths`` measured by forward hooks, written C×H×W as in the diagram."""
    shapes, modules = {}, dict(model.named_modules())

    def hook(path):
        def record(_module, _inputs, output):
            shapes.setdefault(path, "×".join(map(str, output.shape[1:])))
        return record

    hooks = [modules[p].register_forward_hook(hook(p)) for p in paths]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(input_size))
    for hook in hooks:
        hook.remove()
    return shapes


def _rows(svg: str) -> dict[str, str]:
    """{box name: output shape}: each box is a bold name, a description and a shape, in that order."""
    texts = _text(svg)
    shape = re.compile(r"^\d+(×\d+)*$")
    rows = {}
    for i, t in enumerate(texts):
        if t in rows or shape.match(t):
            continue
        following = next((u for u in texts[i + 1:i + 3] if shape.match(u)), None)
        rows.setdefault(t, following)
    return rows


@pytest.mark.parametrize("name, paths", [
    ("alexnet", [f"features.{i}" for i in (0, 3, 4, 7, 8, 10, 12, 14)]
     + ["classifier.1", "classifier.4", "classifier.7"]),
    ("googlenet", ["stem", *[f"blocks.inception{b}" for b in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]]),
    ("resnet18", ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "fc"]),
    ("densenet121", [f"features.denseblock{i}" for i in (1, 2, 3, 4)] + [f"features.transition{i}" for i in (1, 2, 3)]),
    ("coatnet", ["s0", "s1", "s2", "s3", "s4"]),
])
@pytest.mark.parametrize("small", [False, True])
def test_each_stage_is_a_box_with_its_paper_name_and_measured_shape(name, paths, small):
    side = models.small_resolution(name) if small else 224
    model = models.build_small(name) if small else models.build(name)
    size = (1, 1 if small else 3, side, side)
    rows = _rows(diagram.architecture_diagram(model, size).data)
    names = summary.layer_names(model)
    paths = [p for p in paths if not isinstance(model.get_submodule(p), nn.Identity)]  # folded: no box
    for path, shape in _shapes(model, size, paths).items():
        assert rows.get(names[path]) == shape, (path, names[path], rows)


def test_the_diagram_follows_the_code():
    plain = _rows(diagram.architecture_diagram(models.build("vgg11", width=0.25), (1, 3, 64, 64)).data)
    config = [64, "M", 128, "M", 256, 256, 256, "M", 512, 512, "M", 512, 512, "M"]  # one more conv in block 3
    deeper = _rows(diagram.architecture_diagram(models.VGG(config, width=0.25), (1, 3, 64, 64)).data)
    assert "conv3_3" not in plain and deeper["conv3_3"] == "64×16×16"
    wider = _rows(diagram.architecture_diagram(models.build("vgg11", width=0.5), (1, 3, 64, 64)).data)
    assert plain["conv5_2"] == "128×4×4" and wider["conv5_2"] == "256×4×4"


def test_small_and_displayable():
    image = diagram.architecture_diagram(models.build("googlenet"), (1, 3, 224, 224))
    assert image._repr_svg_().lstrip().startswith("<svg") and len(image.data) < 60_000
    assert "features." not in image.data and "blocks." not in image.data


def test_missing_dot_names_the_fix(monkeypatch):
    monkeypatch.setattr(diagram.shutil, "which", lambda name: None)
    with pytest.raises(diagram.GraphvizNotFound, match="install Graphviz.*apt-get install graphviz"):
        diagram.architecture_diagram(models.build_small("resnet18"), (1, 1, 28, 28))
