"""The plots' mechanics on small synthetic tensors (no trained model, no data set): every label is legible
at the book's column width, labels do not collide, and the static feature explorer is small, offline and
switches its picture and label together in a real browser."""

import io
import re
import shutil

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from book import viz  # noqa: E402
from book.train import EpochRecord, History  # noqa: E402

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


class SyntheticImages:
    """An ImageSet look-alike of random pictures."""

    def __init__(self, channels=1, side=28, per_class=8):
        self.classes = CLASSES
        self.labels = torch.arange(len(CLASSES)).repeat(per_class)
        self.images = torch.rand(len(self.labels), channels, side, side)


class SyntheticCAMNet(nn.Module):
    """A GAP network with ``class_maps``, as book.models.nin's NiN has."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4))
        self.maps = nn.Conv2d(8, classes, 1)

    def class_maps(self, x):
        return self.maps(self.features(x))

    def forward(self, x):
        return self.class_maps(x).mean((2, 3))


class SyntheticConvNet(nn.Sequential):
    """Two conv layers (20 and 6 channels) and a fully connected layer of 50 units."""

    def __init__(self):
        super().__init__(nn.Conv2d(1, 20, 3, padding=1), nn.ReLU(), nn.Conv2d(20, 6, 3, stride=2, padding=1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(6 * 16 * 16, 50), nn.ReLU())


LAYERS = ["1", "3", "6"]


def synthetic_history(epochs=10):
    return History(records=[EpochRecord(e, 1 / e, 1 - 0.3 / e, 1.1 / e, 1 - 0.35 / e, 1000.0, 10.0, 0.1)
                            for e in range(1, epochs + 1)])


def pareto_figure(points=((68, 0.778), (269, 0.774), (102, 0.765))):
    """Chapter 07's plot: accuracy against parameters, one dot per network, and the Pareto front."""
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    ax.scatter(*zip(*points), color="tab:blue", s=16, label="networks")
    viz.plot_pareto_front(ax, points)
    ax.set(xscale="log", xlabel="parameters (thousands)", ylabel="test accuracy")
    ax.legend(fontsize=9)
    ax.tick_params(labelsize=9)
    fig.tight_layout()
    return fig


def every_plot():
    torch.manual_seed(0)
    actual = torch.randint(0, 10, (10_000,))
    predicted = torch.where(torch.rand(10_000) < 0.85, actual, torch.randint(0, 10, (10_000,)))
    net = SyntheticConvNet()
    return {
        "plot_history": lambda: viz.plot_history(synthetic_history()),
        "plot_history_one_epoch": lambda: viz.plot_history(synthetic_history(1)),
        "pareto_front": pareto_figure,
        "confusion_matrix": lambda: viz.confusion_matrix(predicted, actual, CLASSES, "a long synthetic title here"),
        "filter_grid": lambda: viz.filter_grid(torch.randn(64, 3, 5, 5)),
        "filter_grid_gray": lambda: viz.filter_grid(torch.randn(24, 1, 11, 11)),
        "feature_maps": lambda: viz.feature_maps(net, torch.rand(1, 32, 32), LAYERS, channels=8),
        "sample_grid": lambda: viz.sample_grid(SyntheticImages(), per_class=8, title="synthetic samples"),
        "sample_grid_rgb": lambda: viz.sample_grid(SyntheticImages(3, 64), per_class=6, title="synthetic RGB"),
        "class_activation_maps": lambda: viz.class_activation_maps(SyntheticCAMNet(), torch.rand(8, 1, 32, 32),
                                                                   CLASSES, torch.arange(8)),
        "ilsvrc_timeline": viz.ilsvrc_timeline,
        "attention_overlay": lambda: viz.attention_overlay(torch.rand(8, 1, 28, 28), {
            "ViT rollout": torch.rand(8, 7, 7), "ViT last layer": torch.rand(8, 7, 7), "CoAtNet S1": torch.rand(8, 16, 16)},
            CLASSES[:8]),
        "relative_bias": lambda: viz.relative_bias(torch.randn(2, 49), 4),
    }


@pytest.mark.parametrize("name", list(every_plot()))
def test_every_label_is_at_least_9pt_at_the_column_width(name):
    fig = every_plot()[name]()
    try:
        smallest = viz.smallest_label_pt(fig)
        assert smallest >= 9, f"{name}: smallest label {smallest:.1f} pt at {viz.COLUMN_PX} px"
        hidden = viz.texts_over_images(fig) if name != "confusion_matrix" else []  # its counts sit on cells
        assert not hidden, f"{name}: texts under pictures: {hidden}"
    finally:
        plt.close(fig)


def test_smallest_label_pt_sees_small_and_shrunk_text():
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.text(0.5, 0.5, "tiny", fontsize=6)
    assert viz.smallest_label_pt(fig) == pytest.approx(6)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(14, 3))  # 1400 px wide: shown at half size in a 688 px column
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("big", fontsize=12)
    assert viz.smallest_label_pt(fig) < 9  # 12 pt × 688 / ~1085 px (the tight box) ≈ 7.6
    ax.set_title("")  # nothing drawn, nothing measured
    assert viz.smallest_label_pt(fig) == float("inf")
    plt.close(fig)


def test_collisions_are_detected_and_the_charts_have_none():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.annotate("one label", (0.5, 0.5))
    ax.annotate("another", (0.52, 0.5))
    assert viz.overlapping_texts(fig)
    plt.close(fig)
    for name in ("ilsvrc_timeline", "class_activation_maps"):
        fig = every_plot()[name]()
        assert viz.overlapping_texts(fig) == [], name
        plt.close(fig)


def test_a_typical_figure_is_small():
    fig = viz.plot_history(synthetic_history())
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")  # what the inline backend stores
    plt.close(fig)
    assert len(buffer.getvalue()) < 60_000


def test_a_one_epoch_history_is_drawn_as_bars_with_its_numbers():
    """One epoch has no curve: a line plot would show one dot per series on an axis from 0.96 to 1.04."""
    fig = viz.plot_history(synthetic_history(1))
    try:
        for ax in fig.axes:
            assert not [line for line in ax.get_lines() if len(line.get_xdata()) == 1], "one-point lines"
            assert len(ax.containers) == 1 and len(ax.containers[0]) == 2  # a train bar and a test bar
            assert [t.get_text() for t in ax.get_xticklabels()] == ["train", "test"]
            assert "after epoch 1" in ax.get_title()
        loss, acc = (sorted(float(t.get_text()) for t in ax.texts) for ax in fig.axes)  # the bars' labels
        assert loss == [1.0, 1.1] and acc == [0.65, 0.7]  # synthetic_history(1): losses 1/1, 1.1/1; 1-0.3, 1-0.35
        assert viz.smallest_label_pt(fig) >= 9
    finally:
        plt.close(fig)
    fig = viz.plot_history(History(records=[EpochRecord(1, 0.8, 0.7, None, None, 1000.0, 10.0, 0.1)]))
    assert [len(ax.containers[0]) for ax in fig.axes] == [1, 1]  # no held-out figures: only the train bar
    plt.close(fig)
    fig = viz.plot_history(synthetic_history(3))  # from two epochs on: the curves, as before
    assert all(len(line.get_xdata()) == 3 for ax in fig.axes for line in ax.get_lines())
    plt.close(fig)


def test_the_training_log_and_the_legend_name_the_held_out_split_alike(capsys):
    """The log line of ``fit`` and the figure's legend both call the held-out figures by the split's name:
    "test" (the chapters evaluate on Fashion-MNIST's test split), or ``meta["held_out"]`` (review item N16)."""
    from book.train import fit

    torch.manual_seed(0)
    batches = [(torch.rand(16, 1, 8, 8), torch.randint(0, 3, (16,))) for _ in range(2)]
    for meta, name in (({}, "test"), ({"held_out": "val"}, "val")):
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
        history = fit(net, batches, batches, epochs=2, device="cpu", bf16=False, stored=True, live_plot=False,
                      meta=meta)
        log = capsys.readouterr().out
        assert f", {name} loss " in log and f", {name} acc " in log, log
        assert ("val loss" in log) == (name == "val"), log
        fig = viz.plot_history(history)
        assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["train", name]
        plt.close(fig)
        fig = viz.plot_history(History(history.records[:1], history.meta))
        assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["train", name]
        plt.close(fig)


def _dark_pixels(fig) -> int:
    fig.canvas.draw()
    rgb = torch.from_numpy(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()).int()
    return int((rgb.sum(-1) < 200).sum())


def test_a_pareto_front_of_one_point_is_visible_and_named():
    """Review item E10: with one point, a "k--" line draws nothing while the legend lists it."""
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set(xlim=(0, 10), ylim=(0, 1), xticks=[], yticks=[])
    for spine in ax.spines.values():
        spine.set_visible(False)
    assert _dark_pixels(fig) == 0
    ax.plot([5], [0.5], "k--")  # the old way: nothing is drawn
    assert _dark_pixels(fig) == 0
    front = viz.plot_pareto_front(ax, {"a": (5, 0.5), "b": (7, 0.4), "c": (8, 0.5)})  # b and c are dominated
    assert front.get_label() == "Pareto front (1 point)"
    assert front.get_marker() == "D" and front.get_markersize() >= 10 and front.get_markeredgewidth() > 1
    assert front.get_markerfacecolor() == "none"  # a ring: the network's own dot stays visible inside it
    assert _dark_pixels(fig) > 30  # the ring is drawn
    legend = ax.legend()
    assert legend.get_lines()[0].get_marker() == "D"  # the legend shows the ring that marks the front
    plt.close(fig)
    fig, ax = plt.subplots()
    front = viz.plot_pareto_front(ax, [(1, 0.8), (2, 0.9), (3, 0.85), (4, 0.95)])
    assert front.get_label() == "Pareto front (3 points)" and front.get_drawstyle() == "steps-post"
    assert list(front.get_xdata()) == [1, 2, 4] and front.get_marker() == "D"
    assert viz.plot_pareto_front(ax, []) is None
    plt.close(fig)


def test_every_layer_of_an_explorer_shows_its_own_maps():
    """A dense block's output starts with its input's channels, unchanged (issue 24 §8): the explorer leaves
    those out, so that every layer option shows different maps for every image."""
    import json

    from book.models.densenet import DenseNet

    torch.manual_seed(0)
    net = DenseNet(4, 8, (2, 2), 10, 1, stem="small").eval()
    layers = ["features.relu0", "features.denseblock1", "features.transition1", "features.denseblock2"]
    explorer = viz.static_explorer(net, torch.rand(4, 1, 16, 16), layers, max_channels=6)
    found = re.search(r'<script type="application/json">(.*?)</script>', explorer.html, re.S).group(1)
    shown = json.loads(found.replace("<\\/", "</"))["layers"]
    for i in range(4):  # per image: one sheet per layer, no two alike
        sheets = [layer["sprites"][i] for layer in shown]
        assert len(set(sheets)) == len(sheets), f"image {i}: two layers show the same maps"
    dense1, dense2 = shown[1], shown[3]
    assert dense1["channels"] == 16 and dense1["index"] == [8, 9, 10, 11, 12, 13]  # relu0 had 8 channels
    assert dense1["note"] == "channels 0–7 repeat relu0 and are left out"
    assert dense2["index"][0] == 8 and "repeat transition 1" in dense2["note"]
    assert "index" not in shown[0] and "index" not in shown[2]
    plain = synthetic_explorer().html  # a plain network's layers repeat nothing: every channel from 0
    found = re.search(r'<script type="application/json">(.*?)</script>', plain, re.S).group(1)
    plain_layers = json.loads(found.replace("<\\/", "</"))["layers"]
    for i in range(8):
        sheets = [layer["sprites"][i] for layer in plain_layers]
        assert len(set(sheets)) == len(sheets) and not any("index" in layer for layer in plain_layers)


def test_repeated_channels_finds_copies_but_not_dead_units():
    torch.manual_seed(0)
    a = torch.rand(3, 4, 4)
    dead = torch.zeros(1, 4, 4)
    captured = [{"a": torch.cat([a, dead]), "b": torch.cat([a[1:2], torch.rand(2, 4, 4), dead]), "c": torch.rand(5)}
                for _ in range(2)]
    assert viz.repeated_channels(captured, ["a", "b", "c"]) == {"a": {}, "b": {0: "a"}, "c": {}}
    captured[1]["b"][0, 0, 0] += 1  # a copy for one image only is no copy
    assert viz.repeated_channels(captured, ["a", "b", "c"]) == {"a": {}, "b": {}, "c": {}}


def synthetic_explorer(**kwargs):
    torch.manual_seed(0)
    net = SyntheticConvNet()
    images = torch.rand(10, 1, 32, 32)
    return viz.static_explorer(net, images, LAYERS, [f"synthetic class {i}" for i in range(10)], **kwargs)


def test_static_explorer_is_offline_small_and_complete():
    explorer = synthetic_explorer()
    page = explorer.html
    assert explorer.kb <= 150 and explorer.images == 8 and explorer.layers == 3
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "nothing may come from outside"
    assert "<script src" not in page and "ipywidgets" not in page
    sprites = re.findall(r"data:image/png;base64,", page)
    assert len(sprites) == 8 + 8 * 3  # the inputs, then one sheet per image and layer
    assert '"kind":"units","units":50' in page  # the fully connected layer is one grid of all its units
    assert '"channels":20,"shown":16' in page  # at most 16 channels of a layer
    tight = synthetic_explorer(max_kb=40)  # a budget too small for full maps: coarser maps, still within it
    assert tight.kb <= 40 and (tight.max_side is not None or tight.levels < 16)


def test_feature_explorer_is_static_in_a_stored_run_and_widgets_otherwise(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects, **_: shown.extend(objects))
    net, images = SyntheticConvNet(), torch.rand(3, 1, 32, 32)
    monkeypatch.setenv("BOOK_STORED_RUN", "1")
    explorer = viz.feature_explorer(net, images, LAYERS, labels=["a", "b", "c"])
    assert isinstance(explorer, viz.StaticExplorer) and "<canvas" in shown[-1].data
    monkeypatch.setenv("BOOK_STORED_RUN", "0")
    import ipywidgets
    assert isinstance(viz.feature_explorer(net, images, LAYERS), ipywidgets.VBox)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed: `apt-get install chromium` (Debian)")
def test_static_explorer_in_a_browser_at_phone_width():
    from playwright.sync_api import sync_playwright

    page_html = ("<!doctype html><meta name=viewport content='width=device-width'>"
                 f"<body style='margin:8px'>{synthetic_explorer().html}</body>")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 390, "height": 800})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.set_content(page_html)
        page.wait_for_function("() => { const r = document.querySelector('.feature-explorer'); "
                               "return r.dataset.drawn && r.dataset.drawn === r.dataset.state; }")
        picture = "() => document.querySelector('.fx-map').toDataURL()"
        original = "() => document.querySelector('.fx-input').toDataURL()"
        label = lambda: page.inner_text(".fx-label")  # noqa: E731

        def move(selector, value):
            page.eval_on_selector(selector, f"(e) => {{ e.value = '{value}'; e.dispatchEvent(new Event('input')); "
                                            "e.dispatchEvent(new Event('change')); }")
            page.wait_for_function("() => { const r = document.querySelector('.feature-explorer'); "
                                   "return r.dataset.drawn === r.dataset.state; }")  # its sprites have loaded

        # usable at 390 px: nothing wider than the page, every slider has width
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        for selector in (".fx-image", ".fx-channel", ".fx-layer"):
            box = page.eval_on_selector(selector, "(e) => e.getBoundingClientRect().toJSON()")
            assert box["width"] > 40 and box["right"] <= 390, (selector, box)
        before_picture, before_label = page.evaluate(picture), label()
        assert "synthetic class 0" in before_label and "channel 0 of 20" in before_label
        move(".fx-channel", 15)
        assert "channel 15 of 20" in label() and page.evaluate(picture) != before_picture
        move(".fx-layer", 1)  # 6 channels: the channel comes down to 5, in the label as in the picture
        assert "relu2, channel 5 of 6" in label() and page.eval_on_selector(".fx-channel", "e => e.value") == "5"
        first_image = page.evaluate(original)
        move(".fx-image", 4)
        assert "image 4 (synthetic class 4)" in label() and page.evaluate(original) != first_image
        move(".fx-layer", 2)
        assert "relu3: all 50 units" in label() and page.eval_on_selector(".fx-channel", "e => e.disabled")
        assert not errors, errors
        browser.close()
