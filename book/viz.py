"""Plots for the chapters: training curves, sample grids, filters, feature maps, confusion matrices,
class activation maps, the ILSVRC timeline, and a feature explorer.

Every figure is sized for the book's text column (688 CSS pixels, :data:`COLUMN_PX`) so
that its smallest label is at least 9 pt there (:func:`smallest_label_pt` measures it;
tests/test_viz.py checks it). Under a stored run (``BOOK_STORED_RUN=1``, set by ``python
-m book.notebooks``) the feature explorer is a self-contained HTML page fragment instead
of ipywidgets, because the rendered book has no kernel.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import textwrap
import uuid
from dataclasses import dataclass

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .runtime import stored_run

COLUMN_PX = 688  # the book's text column in CSS pixels (Jupyter Book 1.x, pydata theme, wide screen)
MIN_LABEL_PT = 9.0
_WIDTH_IN = 6.8  # figure width: at 100 dpi (matplotlib's default, and the stored runs') it fits the column unscaled

if stored_run():  # one explicit resolution for the stored outputs, whatever the machine's matplotlibrc says
    matplotlib.rcParams["figure.dpi"] = 100
    matplotlib.rcParams["savefig.dpi"] = "figure"


# ---------------------------------------------------------------------------------------------
# legibility

def _drawn_texts(fig) -> tuple[list[tuple[object, float, object]], object]:
    """Every piece of text the figure really draws, as (Text artist, size in points,
    window extent), and the renderer.

    Recorded by drawing the figure once, so hidden tick labels, empty strings and
    switched-off axes do not count."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    drawn: list = []
    draw_text, draw_tex = renderer.draw_text, renderer.draw_tex

    def record_text(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if str(s).strip():
            drawn.append((mtext, prop.get_size_in_points()))
        return draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    def record_tex(gc, x, y, s, prop, angle, *, mtext=None):
        if str(s).strip():
            drawn.append((mtext, prop.get_size_in_points()))
        return draw_tex(gc, x, y, s, prop, angle, mtext=mtext)

    renderer.draw_text, renderer.draw_tex = record_text, record_tex
    try:
        fig.draw(renderer)
    finally:
        del renderer.draw_text, renderer.draw_tex
    seen, texts = set(), []
    for artist, size in drawn:
        if artist is not None and id(artist) in seen:
            continue  # a multi-line text is drawn line by line
        seen.add(id(artist))
        texts.append((artist, size, artist.get_window_extent(renderer) if artist is not None else None))
    return texts, renderer


def _display_dpi(fig) -> float:
    dpi = matplotlib.rcParams["savefig.dpi"]
    return fig.dpi if dpi == "figure" else float(dpi)


def displayed_width_px(fig) -> float:
    """The width of the PNG the inline backend makes of ``fig``
    (``bbox_inches="tight"``), in pixels."""
    _, renderer = _drawn_texts(fig)
    return fig.get_tightbbox(renderer).width * _display_dpi(fig)


def smallest_label_pt(fig, column_px: int = COLUMN_PX) -> float:
    """The smallest text of ``fig`` as it appears in a column ``column_px`` wide: its
    size in points times ``min(1, column_px / width)``, where width is the figure's
    displayed width in pixels (tight bounding box at the saving dpi; the page shrinks a
    wider picture to the column and never enlarges a narrower one)."""
    texts, renderer = _drawn_texts(fig)
    if not texts:
        return math.inf
    width_px = fig.get_tightbbox(renderer).width * _display_dpi(fig)
    return min(size for _, size, _ in texts) * min(1.0, column_px / width_px)


def overlapping_texts(fig, pad_px: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose boxes overlap (by more than ``pad_px``): labels that collide."""
    texts, _ = _drawn_texts(fig)
    boxes = [(artist.get_text(), box) for artist, _, box in texts if box is not None]
    pairs = []
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            if (min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0) > pad_px
                    and min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0) > pad_px):
                pairs.append((a, b))
    return pairs


def texts_over_images(fig, pad_px: float = 1.0) -> list[str]:
    """Drawn texts lying over a picture (an image in some axes): titles hidden under the
    next row's images."""
    texts, renderer = _drawn_texts(fig)
    pictures = [ax.get_window_extent(renderer) for ax in fig.axes if ax.images]
    hidden = []
    for artist, _, box in texts:
        if box is None:
            continue
        for picture in pictures:
            if (min(box.x1, picture.x1) - max(box.x0, picture.x0) > pad_px
                    and min(box.y1, picture.y1) - max(box.y0, picture.y0) > pad_px):
                hidden.append(artist.get_text())
                break
    return hidden


def show(fig, format: str = "png", quality: int = 80) -> None:
    """Display ``fig`` as PNG or JPEG (photographs: several times smaller) and close it,
    like ``plt.show()``."""
    from IPython.display import Image, display

    buffer = io.BytesIO()
    kwargs = {"pil_kwargs": {"quality": quality, "optimize": True}} if format in ("jpeg", "jpg") else {}
    fig.savefig(buffer, format=format, bbox_inches="tight", dpi=_display_dpi(fig), facecolor="white", **kwargs)
    plt.close(fig)
    display(Image(data=buffer.getvalue(), format="jpeg" if format == "jpg" else format))


# ------------------------------------------------------------------------------------------------
# figures

def held_out_name(history) -> str:
    """What a history's held-out figures are called: the split they come from,
    ``history.meta["held_out"]``, else "test" (the chapters evaluate on Fashion-MNIST's
    "test" split, ``data.fashion_mnist("test")``). The training log (``train.fit``) and
    :func:`plot_history` both use it, so that they agree."""
    return str((getattr(history, "meta", None) or {}).get("held_out", "test"))


def plot_history(history, fig=None):
    """Loss (left) and accuracy (right) per epoch, train and held-out
    (:func:`held_out_name`: "test").

    A history of one epoch has no curve to draw: its final figures are shown as labelled
    bars instead."""
    fig = fig or plt.figure(figsize=(_WIDTH_IN, 2.6))
    fig.clear()
    loss_ax, acc_ax = fig.subplots(1, 2)
    held = held_out_name(history)
    has_held = any(v is not None for v in history.column("val_acc"))
    if len(history.records) == 1:
        record = history.records[0]
        names = ["train", held] if has_held else ["train"]
        colours = ["tab:blue", "tab:orange"][:len(names)]
        for ax, values, what in ((loss_ax, (record.train_loss, record.val_loss), "loss"),
                                 (acc_ax, (record.train_acc, record.val_acc), "accuracy")):
            bars = ax.bar(names, values[:len(names)], color=colours, width=0.5)
            ax.bar_label(bars, fmt="%.3f", fontsize=9, padding=2)
            ax.set_xlim(-0.75, len(names) - 0.25)
            ax.set_title(f"{what} after epoch {record.epoch} (one epoch: no curve)", fontsize=10)
            ax.grid(alpha=0.3, axis="y")
            ax.tick_params(labelsize=9)
        top = max(v for v in (record.train_loss, record.val_loss) if v is not None)
        loss_ax.set_ylim(0, top * 1.2 if math.isfinite(top) and top > 0 else 1)
        loss_ax.set_ylabel("cross-entropy", fontsize=10)
        acc_ax.set_ylim(0, 1.15)
        acc_ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        acc_ax.set_ylabel("accuracy", fontsize=10)
        fig.tight_layout()
        return fig
    epochs = history.column("epoch")
    loss_ax.plot(epochs, history.column("train_loss"), "o-", label="train")
    acc_ax.plot(epochs, history.column("train_acc"), "o-", label="train")
    if has_held:
        loss_ax.plot(epochs, history.column("val_loss"), "s--", label=held)
        acc_ax.plot(epochs, history.column("val_acc"), "s--", label=held)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=9)
        ax.tick_params(labelsize=9)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def plot_pareto_front(ax, points, *, label: str = "Pareto front", color: str = "black", zorder: float = 4):
    """Mark the Pareto front of ``points`` on ``ax`` and return its artist (None when
    there are no points).

    ``points``: (cost, accuracy) pairs, or {name: (cost, accuracy)}; the front is
    ``compare.pareto_front``'s (lower cost and higher accuracy are better). Each point
    of the front gets a hollow diamond with a dark edge around the dot already there,
    and a dashed staircase joins them (the best accuracy reached at each cost). A front
    of one point has no line to draw: its diamond is drawn larger, and the legend entry
    says how many points the front has, e.g. "Pareto front (1 point)"."""
    from .compare import pareto_front

    values = list(points.values()) if isinstance(points, dict) else list(points)
    front = pareto_front(values)
    if not front:
        return None
    xs, ys = zip(*front)
    n = len(front)
    (line,) = ax.plot(xs, ys, linestyle="--", drawstyle="steps-post", lw=1.2, color=color, marker="D",
                      markersize=12 if n == 1 else 9, markerfacecolor="none", markeredgecolor=color,
                      markeredgewidth=1.8 if n == 1 else 1.4, zorder=zorder,
                      label=f"{label} ({n} point{'' if n == 1 else 's'})")
    return line


def _picture(image: torch.Tensor) -> tuple[np.ndarray, bool]:
    """An image (3, H, W), (1, H, W) or (H, W) as a numpy array: RGB scaled to [0, 1],
    or gray as it is."""
    image = image.detach().float().cpu()
    if image.dim() == 3 and image.shape[0] == 3:
        image = image.permute(1, 2, 0)
        return ((image - image.min()) / (image.max() - image.min() + 1e-8)).numpy(), True
    return (image.squeeze(0) if image.dim() == 3 else image).numpy(), False


def _show(ax, image: torch.Tensor, cmap="gray") -> None:
    picture, rgb = _picture(image)
    ax.imshow(picture, cmap=None if rgb else cmap, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def sample_grid(data, per_class: int = 6, title: str = "", cell: float = 0.62):
    """``per_class`` images of every class of an ImageSet, one row per class, labelled.

    ``cell`` is the side of one picture in inches; the figure never gets wider than the
    book's column."""
    classes = data.classes
    label_in = 0.25 + 0.075 * max(len(name) for name in classes)  # about 5.4 pt a character at 9 pt
    cell = min(cell, (_WIDTH_IN - label_in) / per_class)
    fig, axes = plt.subplots(len(classes), per_class, squeeze=False,
                             figsize=(label_in + per_class * cell, len(classes) * cell + (0.35 if title else 0.05)))
    for c, name in enumerate(classes):
        index = torch.nonzero(data.labels == c).flatten()[:per_class]
        for j in range(per_class):
            ax = axes[c, j]
            if j < len(index):
                _show(ax, data.images[index[j]])
            else:
                ax.axis("off")
        axes[c, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10, y=0.995, va="top")
    fig.tight_layout(pad=0.3, h_pad=0.15, w_pad=0.15, rect=(0, 0, 1, 1 - 0.22 / fig.get_figheight() if title else 1))
    return fig


def filter_grid(weight: torch.Tensor, title: str = "", max_filters: int = 64):
    """First-layer filters (out, in, k, k) as small images: RGB for 3 inputs, gray for 1."""
    weight = weight.detach().float().cpu()[:max_filters]
    n = len(weight)
    cols = min(n, 16)
    rows = math.ceil(n / cols)
    cell = _WIDTH_IN / 16
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell, rows * cell + 0.35), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _show(ax, weight[i] if weight.shape[1] == 3 else weight[i, 0], cmap="RdBu_r")
        else:
            ax.axis("off")
    fig.suptitle(title or f"{n} filters of {tuple(weight.shape[1:])}", fontsize=10, y=0.995, va="top")
    fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.2, rect=(0, 0, 1, 1 - 0.22 / fig.get_figheight()))
    return fig


def activations(model: nn.Module, image: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    """The output of each named module for one image (C, H, W), captured with forward hooks."""
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise KeyError(f"no module named {missing}; see [n for n, _ in model.named_modules()]")
    captured: dict[str, torch.Tensor] = {}
    hooks = [modules[name].register_forward_hook(
        lambda _m, _i, out, name=name: captured.__setitem__(name, (out[0] if isinstance(out, tuple) else out).detach()))
        for name in layers]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(image.unsqueeze(0).to(next(model.parameters()).device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return {name: captured[name][0].float().cpu() for name in layers}


def _display_names(model: nn.Module, layers: list[str]) -> dict[str, str]:
    """The paper's names of ``layers`` ("conv3", "inception 4a"), for labels; the path
    where none is known."""
    from .summary import layer_names

    names = layer_names(model)
    return {layer: names.get(layer, layer) for layer in layers}


def feature_maps(model: nn.Module, image: torch.Tensor, layers: list[str], channels: int = 8):
    """The input image and the first ``channels`` maps of each layer, one row per layer."""
    maps = activations(model, image, layers)
    shown = _display_names(model, layers)
    label_in = 0.3 + 0.075 * max(len(shown[name]) for name in layers)  # about 5.4 pt a character at 9 pt
    cell = min(0.8, (_WIDTH_IN - label_in) / (channels + 1))
    fig, axes = plt.subplots(len(layers), channels + 1, squeeze=False,
                             figsize=(label_in + (channels + 1) * cell, len(layers) * cell + 0.3))
    for row, name in enumerate(layers):
        _show(axes[row, 0], image)
        axes[row, 0].set_ylabel(shown[name], rotation=0, ha="right", va="center", fontsize=9)
        for c in range(channels):
            ax = axes[row, c + 1]
            if c < maps[name].shape[0] and maps[name].dim() == 3:
                _show(ax, maps[name][c], cmap="viridis")
            else:
                ax.axis("off")
    axes[0, 0].set_title("input", fontsize=9)
    for c in range(channels):
        axes[0, c + 1].set_title(f"ch {c}", fontsize=9)
    fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.2)
    return fig


def confusion_matrix(predicted: torch.Tensor, actual: torch.Tensor, classes: list[str], title: str = ""):
    """Rows are true classes, columns predictions; each cell counts test images."""
    n = len(classes)
    predicted, actual = predicted.detach().cpu().long(), actual.detach().cpu().long()
    matrix = torch.bincount(actual * n + predicted, minlength=n * n).view(n, n)
    side = min(5.6, 1.6 + 0.42 * n)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    im = ax.imshow(matrix.numpy(), cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=45, ha="right", rotation_mode="anchor", fontsize=9)
    ax.set_yticks(range(n), classes, fontsize=9)
    biggest = matrix.max().item()
    for i in range(n):
        for j in range(n):
            value = matrix[i, j].item()
            ax.text(j, i, value, ha="center", va="center", fontsize=9,
                    color="white" if value > biggest / 2 else "black")
    ax.set_xlabel("predicted", fontsize=10)
    ax.set_ylabel("true", fontsize=10)
    ax.set_title(title or "confusion matrix", fontsize=10)
    bar = fig.colorbar(im, ax=ax, fraction=0.046)
    bar.ax.tick_params(labelsize=9)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int = 11) -> str:
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)) or text


def class_activation_maps(model: nn.Module, images: torch.Tensor, classes: list[str], labels, count: int = 8):
    """Class activation maps (Zhou et al. 2016) of a GAP network:
    ``model.class_maps(images)`` is (N, classes, h, w).

    Top row: the first ``count`` images, titled with their true class. Bottom row: each
    image under the map of the class the network predicts (the map with the largest
    mean), titled with that class (red: wrong)."""
    images = images[:count]
    labels = [int(v) for v in (labels.tolist() if torch.is_tensor(labels) else labels)][:len(images)]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            maps = model.class_maps(images.to(device)).float()
    finally:
        model.train(was_training)
    predicted = maps.mean((2, 3)).argmax(1)
    n = len(images)
    cell = min(0.8, (_WIDTH_IN - 0.3) / n)
    fig, axes = plt.subplots(2, n, squeeze=False, figsize=(0.3 + n * cell, 2 * cell + 1.25))
    for i in range(n):
        cam = maps[i, predicted[i]][None, None]
        cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[0, 0].cpu()
        picture, rgb = _picture(images[i])
        for ax in axes[:, i]:
            ax.imshow(picture, cmap=None if rgb else "gray")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[1, i].imshow(cam.numpy(), cmap="jet", alpha=0.5)
        axes[0, i].set_title(_wrap(classes[labels[i]]), fontsize=9)
        wrong = i < len(labels) and predicted[i].item() != labels[i]
        axes[1, i].set_title(_wrap(classes[predicted[i].item()]), fontsize=9, color="tab:red" if wrong else "black")
    axes[0, 0].set_ylabel("true class", fontsize=9)
    axes[1, 0].set_ylabel("predicted\nclass's map", fontsize=9)
    fig.suptitle("class activation maps of the GAP head", fontsize=10)
    fig.tight_layout(pad=0.3, h_pad=0.3, w_pad=0.15)
    return fig


def attention_overlay(images: torch.Tensor, rows: dict[str, torch.Tensor], labels: list[str]):
    """Each image (top row), then one row per entry of ``rows``: a (N, h, w) map per
    image, stretched over the image (an attention rollout, a feature map's mean, ...).
    Each map is scaled to its own range."""
    n = len(images)
    label_in = 0.3 + 0.075 * max(len(name) for name in rows)
    cell = min(0.8, (_WIDTH_IN - label_in) / n)
    fig, axes = plt.subplots(1 + len(rows), n, squeeze=False, figsize=(label_in + n * cell, (1 + len(rows)) * cell + 0.6))
    for i in range(n):
        picture, rgb = _picture(images[i])
        for ax in axes[:, i]:
            # Nearest neighbour keeps the image's own pixels as flat squares: a smooth resampling of
            # each panel at screen resolution made this figure a third of its chapter's size.
            ax.imshow(picture, cmap=None if rgb else "gray", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, i].set_title(_wrap(labels[i]), fontsize=9)
        for row, values in enumerate(rows.values(), start=1):
            heat = F.interpolate(values[i][None, None].float(), size=images.shape[-2:], mode="bilinear",
                                 align_corners=False)[0, 0]
            axes[row, i].imshow(heat.numpy(), cmap="jet", alpha=0.55, interpolation="nearest")
    for row, name in enumerate(rows, start=1):
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout(pad=0.3, h_pad=0.3, w_pad=0.15)
    return fig


def relative_bias(table: torch.Tensor, size: int, title: str = ""):
    """A relative-attention bias table (heads, (2·size−1)²) as one image per head: the
    pixel at (dy, dx) is the bias added to the logit of a query attending to the key dy
    rows and dx columns away (CoAtNet Eq. 3)."""
    table = table.detach().float().cpu().reshape(len(table), 2 * size - 1, 2 * size - 1)
    heads = len(table)
    cols = min(heads, 6)
    rows = math.ceil(heads / cols)
    cell = min(1.3, _WIDTH_IN / cols)
    fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(cols * cell, rows * cell + 0.55))
    limit = table.abs().max().item() or 1.0
    ticks = [0, size - 1, 2 * size - 2]
    for h, ax in enumerate(axes.flat):
        if h >= heads:
            ax.axis("off")
            continue
        ax.imshow(table[h].numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_xticks(ticks, [str(t - size + 1) for t in ticks], fontsize=9)
        ax.set_yticks(ticks, [str(t - size + 1) for t in ticks], fontsize=9)
        ax.set_title(f"head {h}", fontsize=9)
    fig.suptitle(title or "relative-position bias w[Δy, Δx] per head (red +, blue −)", fontsize=10, y=0.995, va="top")
    fig.tight_layout(pad=0.3, h_pad=0.3, w_pad=0.3, rect=(0, 0, 1, 1 - 0.25 / fig.get_figheight()))
    return fig


def _place_labels(ax, points, labels, obstacles=(), fontsize=9):
    """Annotate each point with its label at the first nearby offset whose box overlaps
    no earlier label, no marker, no line and nothing in ``obstacles`` (the legend, say):
    labels never collide."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform
    taken = [b for b in obstacles]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):  # the line between points, as small boxes along it
        for t in np.linspace(0, 1, 25):
            px, py = to_px((x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
            taken.append(matplotlib.transforms.Bbox([[px - 2, py - 2], [px + 2, py + 2]]))
    for x, y in points:
        px, py = to_px((x, y))
        taken.append(matplotlib.transforms.Bbox([[px - 5, py - 5], [px + 5, py + 5]]))
    axes_box = ax.get_window_extent(renderer)
    candidates = [(0, 8, "center", "bottom"), (8, 4, "left", "bottom"), (-8, 4, "right", "bottom"),
                  (8, -4, "left", "top"), (-8, -4, "right", "top"), (0, -8, "center", "top")]
    candidates += [(dx, dy + lift, ha, va) for lift in (16, 32, 48, 64) for dx, dy, ha, va in candidates[:3]]
    placed = []
    for (x, y), text in zip(points, labels):
        for dx, dy, ha, va in candidates:
            note = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), ha=ha, va=va,
                               fontsize=fontsize, arrowprops=None)
            box = note.get_window_extent(renderer).expanded(1.04, 1.08)
            inside = (box.x0 >= axes_box.x0 and box.x1 <= axes_box.x1 and box.y0 >= axes_box.y0
                      and box.y1 <= axes_box.y1)
            if inside and not any(box.overlaps(other) for other in taken):
                if abs(dy) > 12:  # lifted away from its point: a thin leader line shows which point it names
                    note.remove()
                    note = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), ha=ha, va=va,
                                       fontsize=fontsize, arrowprops=dict(arrowstyle="-", color="0.6", lw=0.6,
                                                                          shrinkA=0, shrinkB=4))
                taken.append(box)
                placed.append(note)
                break
            note.remove()
        else:
            raise RuntimeError(f"no room for the label {text!r}: make the figure larger")
    return placed


def ilsvrc_timeline():
    """The winning ILSVRC top-5 error by year (``papers.ILSVRC_TOP5``), with AlexNet
    without pre-training and VGG (second in 2014) beside them; every point labelled with
    its team and error, no label on another."""
    from . import papers

    years = [row[0] for row in papers.ILSVRC_TOP5]
    errors = [row[1] for row in papers.ILSVRC_TOP5]
    fig, ax = plt.subplots(figsize=(_WIDTH_IN, 3.9))
    ax.plot(years, errors, "o-", color="tab:blue", label="winner")
    ax.plot([2012], [papers.ALEXNET_TOP5_WITHOUT_PRETRAINING], "x", color="tab:orange", markersize=8, mew=2,
            label=f"AlexNet without ImageNet-2011 pre-training ({papers.ALEXNET_TOP5_WITHOUT_PRETRAINING}%)")
    ax.plot([2014], [papers.VGG_TOP5_2014], "s", color="tab:green",
            label=f"VGG, second in 2014 ({papers.VGG_TOP5_2014}%)")
    ax.set(xlim=(2009.4, 2017.8), ylim=(0, 36), xticks=years)
    ax.set_xlabel("ILSVRC year", fontsize=10)
    ax.set_ylabel("top-5 error (%)", fontsize=10)
    ax.set_title("ILSVRC classification: winning top-5 error", fontsize=11)
    ax.tick_params(labelsize=9)
    ax.grid(alpha=0.3)
    legend = ax.legend(fontsize=9, loc="upper right")
    fig.tight_layout()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    obstacles = [legend.get_window_extent(renderer).expanded(1.02, 1.05)]
    for year, error in ((2012, papers.ALEXNET_TOP5_WITHOUT_PRETRAINING), (2014, papers.VGG_TOP5_2014)):
        px, py = ax.transData.transform((year, error))
        obstacles.append(matplotlib.transforms.Bbox([[px - 6, py - 6], [px + 6, py + 6]]))
    labels = [f"{_wrap(team, 12)}\n{error}%" for _, error, team, _ in papers.ILSVRC_TOP5]
    _place_labels(ax, list(zip(years, errors)), labels, obstacles)
    return fig


# ---------------------------------------------------------------------------------------
# feature explorer

def _unit_grid(values: torch.Tensor) -> torch.Tensor:
    """A fully connected layer's units (N,) as a square grid, NaN where the square has no unit."""
    side = math.ceil(math.sqrt(values.numel()))
    grid = torch.full((side * side,), float("nan"))
    grid[:values.numel()] = values.detach().float().cpu()
    return grid.view(side, side)


def feature_explorer(model: nn.Module, images: torch.Tensor, layers: list[str], labels: list[str] | None = None, *,
                     static: bool | None = None, max_images: int = 8, max_channels: int = 16, max_kb: float = 150):
    """Choose an image, a layer and a channel; see the map beside the image.

    In a live kernel: ipywidgets, each map computed when asked for. Under a stored run
    (``BOOK_STORED_RUN=1``, no kernel behind the page), or with ``static=True``: a
    self-contained HTML explorer of the first ``max_images`` images × every layer × its
    first ``max_channels`` channels, precomputed as PNG sprite sheets and switched by a
    few lines of inline JavaScript; at most ``max_kb`` KB (maps are shown coarser if
    needed). A fully connected (1-D) layer shows all its units as one grid."""
    if static is None:
        static = stored_run()
        if not static:
            try:
                import ipywidgets  # noqa: F401
            except ImportError:
                static = True
    if static:
        from IPython.display import HTML, display

        explorer = static_explorer(model, images, layers, labels, max_images=max_images,
                                   max_channels=max_channels, max_kb=max_kb)
        display(HTML(explorer.html))
        return explorer
    return _widget_explorer(model, images, layers, labels)


def _widget_explorer(model, images, layers, labels):
    import ipywidgets as widgets
    from IPython.display import display

    image_slider = widgets.IntSlider(0, 0, len(images) - 1, description="image")
    shown = _display_names(model, layers)
    layer_menu = widgets.Dropdown(options=[(shown[layer], layer) for layer in layers], description="layer")
    channel_slider = widgets.IntSlider(0, 0, 0, description="channel")
    output = widgets.Output()

    def redraw(*_):
        layer = layer_menu.value
        maps = activations(model, images[image_slider.value], [layer])[layer]
        if maps.dim() == 1:  # a fully connected layer has no channels: show all its units as one grid
            picture, title, channels = _unit_grid(maps), f"{shown[layer]}: all {maps.numel()} units", 1
        else:
            channels = maps.shape[0]
            channel = min(channel_slider.value, channels - 1)
            picture, title = maps[channel], f"{shown[layer]}, channel {channel}"
        channel_slider.max = channels - 1
        channel_slider.disabled = channels == 1
        with output:
            output.clear_output(wait=True)
            fig, (left, right) = plt.subplots(1, 2, figsize=(5, 2.6))
            _show(left, images[image_slider.value])
            left.set_title(labels[image_slider.value] if labels else "input", fontsize=9)
            _show(right, picture, cmap="viridis")
            right.set_title(title, fontsize=9)
            plt.show()

    for control in (image_slider, layer_menu, channel_slider):
        control.observe(redraw, names="value")
    box = widgets.VBox([widgets.HBox([image_slider, layer_menu, channel_slider],
                                     layout=widgets.Layout(flex_flow="row wrap")), output])
    display(box)
    redraw()
    return box


@dataclass
class StaticExplorer:
    """The static explorer's HTML and what it holds (``repr`` stays short: the HTML is
    displayed, not printed)."""
    html: str
    images: int
    layers: int
    max_side: int | None  # maps larger than this many pixels were averaged down to it; None: full resolution
    levels: int

    @property
    def kb(self) -> float:
        return len(self.html.encode()) / 1024

    def __repr__(self) -> str:
        coarse = f", maps at most {self.max_side} px" if self.max_side else ""
        return (f"<static feature explorer: {self.images} images × {self.layers} layers, {self.levels} colour levels"
                f"{coarse}, {self.kb:.0f} KB>")

    def _repr_html_(self) -> str:
        return self.html


def _palette(levels: int, pad: bool) -> list[int]:
    colours = matplotlib.colormaps["viridis"](np.linspace(0, 1, levels))[:, :3]
    palette = (colours * 255).round().astype(np.uint8).reshape(-1).tolist()
    return palette + ([235, 235, 235] if pad else [])


def _png_uri(array: np.ndarray, palette: list[int] | None = None) -> str:
    from PIL import Image

    image = Image.fromarray(array)
    if palette is not None:
        image.putpalette(palette)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _input_uri(image: torch.Tensor) -> str:
    from PIL import Image

    picture, rgb = _picture(image)
    if not rgb:
        lo, hi = float(picture.min()), float(picture.max())
        return _png_uri(((picture - lo) / (hi - lo + 1e-8) * 255).round().astype(np.uint8))
    array = (picture * 255).round().astype(np.uint8)
    if max(array.shape[:2]) <= 48:
        return _png_uri(array)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=80, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _levels(values: torch.Tensor, levels: int) -> np.ndarray:
    """Values scaled to 0 … levels-1 by their own minimum and maximum (NaN stays NaN →
    the pad index)."""
    finite = values[torch.isfinite(values)]
    lo, hi = (finite.min().item(), finite.max().item()) if finite.numel() else (0.0, 0.0)
    scaled = ((values - lo) / (hi - lo) * (levels - 1)).round() if hi > lo else torch.zeros_like(values)
    return torch.nan_to_num(scaled, nan=float(levels)).clamp(0, levels).to(torch.uint8).numpy()


def _sprite(maps: torch.Tensor, channels: int, levels: int, max_side: int | None,
            index: list[int] | None = None) -> tuple[str, dict]:
    """One image's maps of one layer as a PNG sprite sheet (channels in a grid), and its geometry.

    ``index``: the channels to show, in order (default: the first ``channels``)."""
    if maps.dim() == 1:
        grid = _unit_grid(maps)
        return _png_uri(_levels(grid, levels - 1), _palette(levels - 1, pad=True)), dict(
            kind="units", units=maps.numel(), shown=1, w=grid.shape[1], h=grid.shape[0], cols=1)
    if maps.dim() != 3:
        raise ValueError(f"a layer's output must be (C, H, W) or (N,) for one image, not {tuple(maps.shape)}")
    total, height, width = maps.shape
    index = list(range(total)) if index is None else list(index)
    index = index[:channels]
    shown = len(index)
    maps = maps[index]
    if max_side and max(height, width) > max_side:
        maps = F.adaptive_avg_pool2d(maps[None], (min(height, max_side), min(width, max_side)))[0]
    h, w = maps.shape[1:]
    cols = math.ceil(math.sqrt(shown))
    rows = math.ceil(shown / cols)
    sheet = np.zeros((rows * h, cols * w), dtype=np.uint8)
    for c in range(shown):
        r, q = divmod(c, cols)
        sheet[r * h:(r + 1) * h, q * w:(q + 1) * w] = _levels(maps[c], levels)
    return _png_uri(sheet, _palette(levels, pad=False)), dict(
        kind="maps", channels=total, shown=shown, w=w, h=h, cols=cols, side=f"{height}×{width}")


_CSS = """
#ID{max-width:100%;box-sizing:border-box;font-size:15px;line-height:1.3;margin:.5em 0}
#ID .fx-controls{display:flex;flex-wrap:wrap;gap:.4em 1em;margin-bottom:.5em}
#ID .fx-controls label{display:flex;align-items:center;gap:.4em;flex:1 1 11em;min-width:0}
#ID .fx-controls input[type=range]{flex:1 1 6em;min-width:5em;width:100%;margin:0}
#ID .fx-controls select{flex:1 1 6em;min-width:0;max-width:100%;font:inherit}
#ID .fx-controls output{min-width:1.6em;text-align:right;font-variant-numeric:tabular-nums}
#ID .fx-pictures{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-start}
#ID figure{margin:0;flex:0 1 180px;min-width:0}
#ID canvas{width:100%;max-width:180px;height:auto;image-rendering:pixelated;display:block;background:#eee}
#ID figcaption{font-size:14px;overflow-wrap:anywhere}
#ID .fx-label{margin-top:.4em;font-size:14px;overflow-wrap:anywhere}
"""

_JS = """
(function () {
  var root = document.getElementById("ID");
  var D = JSON.parse(root.querySelector("script[type='application/json']").textContent);
  var q = function (s) { return root.querySelector(s); };
  var image = q(".fx-image"), layer = q(".fx-layer"), channel = q(".fx-channel");
  var cache = {};
  function picture(src) {
    if (!cache[src]) { cache[src] = new Image(); cache[src].onload = render; cache[src].src = src; }
    return cache[src];
  }
  function draw(canvas, src, sx, sy, w, h) {
    var img = picture(src), scale = Math.max(1, Math.floor(180 / Math.max(w, h)));
    canvas.width = w * scale; canvas.height = h * scale;
    var ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    if (!(img.complete && img.naturalWidth)) return false;  // drawn by render() again once it has loaded
    ctx.drawImage(img, sx, sy, w, h, 0, 0, w * scale, h * scale);
    return true;
  }
  function render() {
    var i = +image.value, L = D.layers[+layer.value];
    channel.max = L.shown - 1;
    channel.disabled = L.shown === 1;
    if (+channel.value > L.shown - 1) channel.value = L.shown - 1;
    var c = L.shown === 1 ? 0 : +channel.value;  // the place in the sprite sheet
    var n = L.index ? L.index[c] : c;            // the channel's own number in the layer
    q(".fx-image-out").textContent = i;
    q(".fx-channel-out").textContent = L.kind === "units" ? "–" : n;
    var img = D.images[i], what;
    if (L.kind === "units") what = L.name + ": all " + L.units + " units";
    else what = L.name + ", channel " + n + " of " + L.channels +
      (L.shown < L.channels ? (L.index ? " (" + L.shown + " here)" : " (first " + L.shown + " here)") : "") +
      (L.note ? ", " + L.note : "");
    q(".fx-input-cap").textContent = img.label;
    q(".fx-map-cap").textContent = what;
    q(".fx-label").textContent = "image " + i + " (" + img.label + ") · " + what;
    root.dataset.state = [i, L.name, L.kind === "units" ? "units" : n].join("|");
    var done = draw(q(".fx-input"), img.src, 0, 0, img.w, img.h);
    done = draw(q(".fx-map"), L.sprites[i], (c % L.cols) * L.w, Math.floor(c / L.cols) * L.h, L.w, L.h) && done;
    root.dataset.drawn = done ? root.dataset.state : "";
  }
  image.addEventListener("input", render);
  layer.addEventListener("change", render);
  channel.addEventListener("input", render);
  render();
})();
"""


def _ranges(channels: list[int]) -> str:
    """Channel numbers as ranges: [0, 1, 2, 5] → "0–2, 5"."""
    spans: list[list[int]] = []
    for c in sorted(channels):
        if spans and c == spans[-1][1] + 1:
            spans[-1][1] = c
        else:
            spans.append([c, c])
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in spans)


def repeated_channels(captured: list[dict[str, torch.Tensor]], layers: list[str]) -> dict[str, dict[int, str]]:
    """For each layer, the channels that are an exact copy of a channel of an earlier
    layer in ``layers``, for every image, mapped to that earlier layer: {layer:
    {channel: earlier layer}}.

    A concatenation passes its input on unchanged (a dense block's output holds its
    input's channels in front), so the first channels of such a layer show the very maps
    of the layer before it. A constant map (a dead unit) is never counted as a copy: all
    dead units look alike."""
    seen: dict[tuple, str] = {}  # (shape, bytes of one channel over every image) → the first layer that had it
    repeated: dict[str, dict[int, str]] = {}
    for name in layers:
        maps = torch.stack([one[name] for one in captured])  # (images, C, H, W)
        repeated[name] = {}
        if maps.dim() != 4:
            continue
        rows = maps.transpose(0, 1).reshape(maps.shape[1], -1).contiguous()
        keys = []
        for c, row in enumerate(rows):
            key = (tuple(maps.shape[2:]), row.numpy().tobytes())
            keys.append(key)
            if key in seen and row.max() > row.min():
                repeated[name][c] = seen[key]
        for key in keys:
            seen.setdefault(key, name)
    return repeated


def static_explorer(model: nn.Module, images: torch.Tensor, layers: list[str], labels: list[str] | None = None, *,
                    max_images: int = 8, max_channels: int = 16, max_kb: float = 150) -> StaticExplorer:
    """The self-contained HTML explorer of :func:`feature_explorer` (no kernel, no outside scripts).

    Its size is kept under ``max_kb``: first with fewer grey levels, then by averaging
    large maps down. A layer's channels that only repeat an earlier layer's maps
    (:func:`repeated_channels`: a dense block's input, passed on by its concatenation)
    are left out, so that its first ``max_channels`` are its own."""
    images = images[:max_images]
    labels = list(labels[:len(images)]) if labels else [f"image {i}" for i in range(len(images))]
    captured = [activations(model, image, layers) for image in images]
    shown = _display_names(model, layers)
    repeated = repeated_channels(captured, layers)
    own = {}  # layer → the channels it shows (None: the first ones), and the note that says which are left out
    for name in layers:
        if not repeated[name]:
            own[name] = (None, "")
            continue
        total = captured[0][name].shape[0]
        fresh = [c for c in range(total) if c not in repeated[name]]
        sources = list(dict.fromkeys(repeated[name].values()))
        note = (f"channels {_ranges(list(repeated[name]))} repeat {', '.join(shown[s] for s in sources)}"
                + (" and are left out" if fresh else ""))
        own[name] = (fresh or None, note)
    inputs = []
    for image, label in zip(images, labels):
        picture, _ = _picture(image)
        inputs.append(dict(src=_input_uri(image), label=str(label), w=picture.shape[1], h=picture.shape[0]))
    biggest = max((maps.shape[-1] for one in captured for maps in one.values() if maps.dim() == 3), default=1)
    sides = [None] + [s for s in (32, 24, 16, 12, 8) if s < biggest]
    attempts = [(side, levels) for side in sides for levels in (16, 8)]
    for side, levels in attempts:
        layer_data = []
        for name in layers:
            sprites, geometry = [], None
            index, left_out = own[name]
            for one in captured:
                uri, geometry = _sprite(one[name], max_channels, levels, side, index)
                sprites.append(uri)
            notes = [left_out] if left_out else []
            if index is not None:
                geometry["index"] = index[:geometry["shown"]]
            if geometry["kind"] == "maps" and f"{geometry['h']}×{geometry['w']}" != geometry["side"]:
                notes.append(f"{geometry['side']} shown at {geometry['h']}×{geometry['w']}")
            if notes:
                geometry["note"] = "; ".join(notes)
            geometry.pop("side", None)
            layer_data.append(dict(name=shown[name], sprites=sprites, **geometry))
        page = _explorer_html(inputs, layer_data)
        if len(page.encode()) <= max_kb * 1024 or (side, levels) == attempts[-1]:
            return StaticExplorer(page, len(images), len(layers), side, levels)
    raise AssertionError("unreachable")


def _explorer_html(inputs: list[dict], layers: list[dict]) -> str:
    ident = "fx-" + uuid.uuid4().hex[:10]
    data = json.dumps(dict(images=inputs, layers=layers), separators=(",", ":")).replace("</", "<\\/")
    options = "".join(f'<option value="{k}">{html.escape(layer["name"])}</option>' for k, layer in enumerate(layers))
    most = max(layer["shown"] for layer in layers)
    return (
        f'<div id="{ident}" class="feature-explorer">'
        f"<style>{_CSS.replace('ID', ident)}</style>"
        '<div class="fx-controls">'
        f'<label>image <input class="fx-image" type="range" min="0" max="{len(inputs) - 1}" value="0" '
        f'aria-label="image"><output class="fx-image-out">0</output></label>'
        f'<label>layer <select class="fx-layer" aria-label="layer">{options}</select></label>'
        f'<label>channel <input class="fx-channel" type="range" min="0" max="{most - 1}" value="0" '
        f'aria-label="channel"><output class="fx-channel-out">0</output></label>'
        "</div>"
        '<div class="fx-pictures">'
        '<figure><canvas class="fx-input"></canvas><figcaption class="fx-input-cap"></figcaption></figure>'
        '<figure><canvas class="fx-map"></canvas><figcaption class="fx-map-cap"></figcaption></figure>'
        "</div>"
        '<div class="fx-label"></div>'
        f'<script type="application/json">{data}</script>'
        f"<script>{_JS.replace('ID', ident)}</script>"
        "</div>"
    )
