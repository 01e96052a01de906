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
        following = next((u for u in texts[i + 1:i + 4] if shape.match(u)), None)  # 2 lines of description
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
    rows = {re.sub(r" \([CT]\)$", "", k): v for k, v in _rows(diagram.architecture_diagram(model, size).data).items()}
    names = summary.layer_names(model)  # (CoAtNet's boxes carry a C or T tag after the name)
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


def _dot(image) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """{node id: its label's text} and the edges (tail, head) of a diagram's DOT source."""
    labels = {m[1]: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m[2])).strip()
              for m in re.finditer(r'^\t+"?(\w+)"? \[label=(<<TABLE.*?</TABLE>>)', image.source, flags=re.M)}
    edges = re.findall(r'^\t+"?(\w+)"? -> "?(\w+)"?', image.source, flags=re.M)
    return labels, edges


def _into(labels, edges, word):
    """{join node: the labels of the boxes that feed it} for every node whose label starts with ``word``."""
    return {n: [labels[t] for t, h in edges if h == n] for n, text in labels.items() if text.startswith(word)}


def test_resnet_block_shows_projection_and_identity_shortcuts():
    labels, edges = _dot(diagram.block_diagram(models.build_small("resnet18"), (1, 1, 28, 28)))
    adds = list(_into(labels, edges, "add").values())
    assert len(adds) == 2 and all(len(inputs) == 2 for inputs in adds)
    assert any("downsample" in t and "conv 1×1/2" in t for t in adds[0])      # block 1: projection (option B)
    assert any(t.startswith("add") for t in adds[1])                           # block 2: identity from block 1


def test_densenet_block_concatenates_all_earlier_maps():
    labels, edges = _dot(diagram.block_diagram(models.build_small("densenet121"), (1, 1, 28, 28)))
    counts = [len(inputs) for inputs in _into(labels, edges, "concatenate").values()]
    assert sorted(counts) == [1, 2, 3, 4]  # three layers (small config), then the block's output


def test_inception_block_concatenates_four_branches():
    labels, edges = _dot(diagram.block_diagram(models.build("googlenet"), (1, 3, 224, 224)))
    (inputs,) = _into(labels, edges, "concatenate").values()
    assert len(inputs) == 4 and sum("conv 5×5" in t for t in inputs) == 1
    assert len(re.findall(r"subgraph cluster_", diagram.block_diagram(models.build("googlenet"),
                                                                      (1, 3, 224, 224)).source)) == 4


def test_nin_block_is_a_conv_and_two_pointwise_convs():
    labels, _ = _dot(diagram.block_diagram(models.build("nin"), (1, 3, 224, 224)))
    assert [t.split()[1:3] for t in labels.values() if "conv" in t] == [["conv", "11×11/4"], ["conv", "1×1"],
                                                                      ["conv", "1×1"]]


def test_vit_class_token_and_position_embedding_feed_their_joins():
    labels, edges = _dot(diagram.architecture_diagram(models.build_small("vit"), (1, 1, 28, 28)))
    (cat,) = _into(labels, edges, "concatenate").values()
    assert any(t.startswith("class token") and "1×64" in t for t in cat)
    assert any(t.startswith("patch embed") for t in cat)
    (add,) = _into(labels, edges, "add").values()
    assert any(t.startswith("position") and "50×64" in t for t in add)


def test_coatnet_stages_are_tagged_c_or_t():
    rows = _rows(diagram.architecture_diagram(models.build_small("coatnet"), (1, 1, 32, 32)).data)
    assert {"S0 (C)", "S1 (C)", "S2 (C)", "S3 (T)", "S4 (T)"} <= set(rows)


def test_alexnet_dropout_and_googlenet_lrn_are_drawn():
    alexnet = " ".join(_text(diagram.architecture_diagram(models.build("alexnet"), (1, 3, 224, 224)).data))
    assert alexnet.count("dropout 0.5") == 2
    googlenet = " ".join(_text(diagram.architecture_diagram(models.build("googlenet"), (1, 3, 224, 224)).data))
    assert googlenet.count("LRN") == 2


def test_block_diagram_needs_a_block():
    with pytest.raises(ValueError, match="diagram_block"):
        diagram.block_diagram(models.build_small("alexnet"), (1, 1, 32, 32))
