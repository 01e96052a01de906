"""Run profiles, kept in one place: how much data, how many epochs, what resolution.

- ``smoke``: a few hundred images and one short epoch, seconds per chapter. CI runs this.
- ``cpu``: a few minutes of training per network on a 2-core AVX2 CPU, on the small configuration.
- ``gpu``: the paper's configuration (VGG at a quarter width) at D2L's resolutions and epochs, and Imagenette too.

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
    "cpu": Profile("cpu", None, None, True, False, 500, 3, 1500, "all of Fashion-MNIST, small models, a few minutes of training per network"),
    "gpu": Profile("gpu", None, None, False, True, 6000, 10, 5000, "paper models at D2L's resolutions (VGG at a quarter width), plus Imagenette"),
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
    train_per_class: int | None = None  # a subset of the training split per class; None: the profile's


# The recipes themselves live in each architecture's ``Spec`` (``book.models.spec``),
# beside its model: ``cpu`` sized so that ``fit`` takes at most about 5 minutes on the
# floor machine (2 cores, AVX2 only), on the small configuration; ``gpu`` D2L's
# resolutions and 10 epochs for the paper's configuration (VGG at D2L's quarter width),
# with D2L's learning rates for AlexNet, VGG, NiN and GoogLeNet and our own for the
# rest.


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
    """The Fashion-MNIST recipe of ``model`` (any name of ``book.models``) in a profile.

    Every name of a family trains with the family's recipe: vgg16 like vgg11, resnet50
    like resnet18."""
    prof = get_profile(profile)
    spec = models.spec_for(model)
    if prof.small_models:
        settings = dict(spec.cpu)
        settings.setdefault("resolution", models.small_resolution(model))
    else:
        settings = dict(spec.gpu)
    result = Recipe(model=model, **settings)
    if prof.name == "smoke":
        result = replace(result, epochs=1)
    return result
