"""Plots for the chapters: training curves, sample grids, filters, feature maps, confusion matrices."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from torch import nn


def plot_history(history, fig=None):
    """Loss (left) and accuracy (right) per epoch, train and validation."""
    fig = fig or plt.figure(figsize=(9, 3.2))
    fig.clear()
    loss_ax, acc_ax = fig.subplots(1, 2)
    epochs = history.column("epoch")
    loss_ax.plot(epochs, history.column("train_loss"), "o-", label="train")
    acc_ax.plot(epochs, history.column("train_acc"), "o-", label="train")
    if any(v is not None for v in history.column("val_acc")):
        loss_ax.plot(epochs, history.column("val_loss"), "s--", label="test")
        acc_ax.plot(epochs, history.column("val_acc"), "s--", label="test")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def _show(ax, image: torch.Tensor, cmap="gray") -> None:
    image = image.detach().float().cpu()
    if image.dim() == 3 and image.shape[0] == 3:
        image = image.permute(1, 2, 0)
        image = (image - image.min()) / (image.max() - image.min() + 1e-8)
        ax.imshow(image)
    else:
        ax.imshow(image.squeeze(0) if image.dim() == 3 else image, cmap=cmap)
    ax.set_xticks([])
    ax.set_yticks([])


def sample_grid(data, per_class: int = 6, title: str = ""):
    """``per_class`` images of every class of an ImageSet, one row per class, labelled."""
    classes = data.classes
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 1.1, len(classes) * 1.15))
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
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def filter_grid(weight: torch.Tensor, title: str = "", max_filters: int = 64):
    """First-layer filters (out, in, k, k) as small images: RGB for 3 inputs, gray for 1."""
    weight = weight.detach().float().cpu()[:max_filters]
    n = len(weight)
    cols = min(n, 16)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.6, rows * 0.6 + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _show(ax, weight[i] if weight.shape[1] == 3 else weight[i, 0], cmap="RdBu_r")
        else:
            ax.axis("off")
    fig.suptitle(title or f"{n} filters of {tuple(weight.shape[1:])}")
    fig.tight_layout()
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
    return {name: captured[name][0].cpu() for name in layers}


def feature_maps(model: nn.Module, image: torch.Tensor, layers: list[str], channels: int = 8):
    """The input image and the first ``channels`` maps of each layer, one row per layer."""
    maps = activations(model, image, layers)
    fig, axes = plt.subplots(len(layers), channels + 1, figsize=((channels + 1) * 1.0, len(layers) * 1.1), squeeze=False)
    for row, name in enumerate(layers):
        _show(axes[row, 0], image)
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        for c in range(channels):
            ax = axes[row, c + 1]
            if c < maps[name].shape[0] and maps[name].dim() == 3:
                _show(ax, maps[name][c], cmap="viridis")
            else:
                ax.axis("off")
    axes[0, 0].set_title("input", fontsize=8)
    fig.tight_layout()
    return fig


def feature_explorer(model: nn.Module, images: torch.Tensor, layers: list[str], labels: list[str] | None = None):
    """An ipywidgets explorer: choose an image, a layer and a channel; see the map beside the image."""
    import ipywidgets as widgets
    from IPython.display import display

    image_slider = widgets.IntSlider(0, 0, len(images) - 1, description="image")
    layer_menu = widgets.Dropdown(options=layers, description="layer")
    channel_slider = widgets.IntSlider(0, 0, 0, description="channel")
    output = widgets.Output()

    def redraw(*_):
        layer = layer_menu.value
        maps = activations(model, images[image_slider.value], [layer])[layer]
        if maps.dim() == 1:  # a fully connected layer has no channels: show all its units as one grid
            side = math.ceil(math.sqrt(maps.numel()))
            grid = torch.full((side * side,), float("nan"))
            grid[:maps.numel()] = maps.detach().float().cpu()
            picture, title, channels = grid.view(side, side), f"{layer}: all {maps.numel()} units", 1
        else:
            channels = maps.shape[0]
            channel = min(channel_slider.value, channels - 1)
            picture, title = maps[channel], f"{layer}, channel {channel}"
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
    box = widgets.VBox([widgets.HBox([image_slider, layer_menu, channel_slider]), output])
    display(box)
    redraw()
    return box


def confusion_matrix(predicted: torch.Tensor, actual: torch.Tensor, classes: list[str], title: str = ""):
    """Rows are true classes, columns predictions; each cell counts test images."""
    n = len(classes)
    matrix = torch.bincount(actual * n + predicted, minlength=n * n).view(n, n)
    fig, ax = plt.subplots(figsize=(6, 5.2))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    for i in range(n):
        for j in range(n):
            value = matrix[i, j].item()
            ax.text(j, i, value, ha="center", va="center", fontsize=6,
                    color="white" if value > matrix.max().item() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
