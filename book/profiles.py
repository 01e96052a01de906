"""Run profiles, kept in one place: how much data, how many epochs, what resolution.

- ``smoke``: a few hundred images and one short epoch, seconds per chapter. CI runs this.
- ``cpu``: each chapter trains for about 5 minutes on a 2-core AVX2 CPU, on the small configuration.
- ``gpu``: the paper's configuration at D2L's resolutions and epochs, and Imagenette too.

The profile comes from the device and ``BOOK_PROFILE`` overrides it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

from . import models


@dataclass(frozen=True)
class Profile:
    name: str
    train_per_class: int | None   # images per class taken from the training split; None = all
    test_per_class: int | None
    small_models: bool            # the small configuration (True) or the paper's (False)
    imagenette: bool              # whether chapters also train on Imagenette
    study_per_class: int          # training images per class for a chapter's side experiments
    study_epochs: int             # epochs of a side experiment
    study_max_steps: int          # step budget of a "steps to reach an error" experiment
    description: str


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", 30, 20, True, False, 10, 1, 20, "300 training images, one epoch: checks that code runs"),
    "cpu": Profile("cpu", None, None, True, False, 500, 3, 1500, "all of Fashion-MNIST, small models, about 5 min of training per chapter"),
    "gpu": Profile("gpu", None, None, False, True, 6000, 10, 5000, "paper models at D2L's resolutions, plus Imagenette"),
}


@dataclass(frozen=True)
class Recipe:
    """How one model trains on Fashion-MNIST in one profile."""

    model: str
    resolution: int
    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "sgd"
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    augment: str = "none"
    options: tuple = ()  # extra model options as (key, value) pairs, kept hashable


# CPU recipes: sized so that `fit` takes at most about 5 minutes on the floor machine (2 cores, AVX2 only).
_CPU: dict[str, dict] = {
    "lenet": dict(epochs=10, batch_size=128, lr=0.9),
    "lenet_bn": dict(epochs=8, batch_size=128, lr=0.1),
    "alexnet": dict(epochs=5, batch_size=128, lr=0.03),
    "vgg11": dict(epochs=8, batch_size=128, lr=0.05),
    "nin": dict(epochs=6, batch_size=128, lr=0.1),
    "googlenet": dict(epochs=3, batch_size=128, lr=0.05),
    # 3 epochs at batch 64 reach what 4 at batch 128 did (twice the steps per epoch, at the same cost per image
    # on the CPU), 1.32× faster end to end on the AVX2 floor over 3 seeds (benchmarks/cpu_recipe.py).
    "resnet18": dict(epochs=3, batch_size=64, lr=0.1),
    "densenet121": dict(epochs=1, batch_size=128, lr=0.1),  # concatenation makes it the slowest per parameter
    # ViT and CoAtNet share one chapter, with two claim studies: 2 epochs and 1 keep it within 10 minutes.
    "vit": dict(epochs=2, batch_size=128, lr=2e-3, optimizer="adamw", weight_decay=0.05),
    "coatnet": dict(epochs=1, batch_size=128, lr=2e-3, optimizer="adamw", weight_decay=0.05),
}
# GPU recipes: D2L's resolutions, epochs and learning rates for the full-size models.
_GPU: dict[str, dict] = {
    "lenet": dict(resolution=28, epochs=10, batch_size=256, lr=0.9),
    "lenet_bn": dict(resolution=28, epochs=10, batch_size=256, lr=0.1),
    "alexnet": dict(resolution=224, epochs=10, batch_size=128, lr=0.01),
    "vgg11": dict(resolution=224, epochs=10, batch_size=128, lr=0.05, options=(("width", 0.25),)),
    "nin": dict(resolution=224, epochs=10, batch_size=128, lr=0.05),
    "googlenet": dict(resolution=96, epochs=10, batch_size=128, lr=0.01, options=(("aux", True),)),  # §5
    "resnet18": dict(resolution=96, epochs=10, batch_size=256, lr=0.05),
    "densenet121": dict(resolution=96, epochs=10, batch_size=256, lr=0.1),
    "vit": dict(resolution=96, epochs=10, batch_size=128, lr=1e-3, optimizer="adamw", weight_decay=0.05,
                options=(("image_size", 96), ("patch_size", 16), ("dim", 512), ("depth", 2), ("heads", 8), ("mlp_dim", 2048))),
    "coatnet": dict(resolution=96, epochs=10, batch_size=128, lr=1e-3, optimizer="adamw", weight_decay=0.05,
                    options=(("image_size", 96),)),
}


def default_profile() -> str:
    """``BOOK_PROFILE`` if set, else "gpu" with CUDA or MPS, else "cpu"."""
    chosen = os.environ.get("BOOK_PROFILE")
    if chosen:
        if chosen not in PROFILES:
            raise ValueError(f"BOOK_PROFILE={chosen!r} is not a profile; choose one of {', '.join(PROFILES)}")
        return chosen
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return "gpu" if torch.cuda.is_available() or has_mps else "cpu"


def get_profile(name: str | None = None) -> Profile:
    name = name or default_profile()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def recipe(model: str, profile: str | None = None) -> Recipe:
    """The Fashion-MNIST recipe of ``model`` (any name of ``book.models``) in a profile."""
    prof = get_profile(profile)
    family = _family(model)
    if prof.small_models:
        settings = dict(_CPU[family])
        settings.setdefault("resolution", models.small_resolution(model))
    else:
        settings = dict(_GPU[family])
    result = Recipe(model=model, **settings)
    if prof.name == "smoke":
        result = replace(result, epochs=1)
    return result


def _family(model: str) -> str:
    """The recipe key of a model name: vgg16 trains like vgg11, resnet50 like resnet18, and so on."""
    for prefix, key in (("vgg", "vgg11"), ("resnet", "resnet18"), ("densenet", "densenet121")):
        if model.startswith(prefix):
            return key
    if model not in _CPU:
        raise KeyError(f"no recipe for {model!r}; known: {', '.join(_CPU)}")
    return model
