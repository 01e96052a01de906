"""Build a model and its Fashion-MNIST or Imagenette loaders from a profile's recipe, then train."""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn

from . import data, models
from .profiles import Recipe, recipe
from .runtime import Runtime
from .train import History, fit, seed_everything


@dataclass
class Experiment:
    model: nn.Module
    train: data.DeviceLoader
    test: data.DeviceLoader
    recipe: Recipe
    runtime: Runtime
    dataset: str
    options: dict        # the model options given to prepare itself (beyond the recipe's)

    @property
    def profile(self) -> str:
        return self.runtime.profile.name


def prepare(model_name: str, runtime: Runtime, *, dataset: str = "fashion-mnist", seed: int = 0,
            epochs: int | None = None, batch_size: int | None = None, lr: float | None = None,
            **model_options) -> Experiment:
    """The model of ``model_name`` and its data, as the runtime's profile's recipe says.

    The small profiles use the small-image configuration of ``book.models``; the gpu profile the
    paper's. ``model_options`` override the recipe's model options (``head="fc"`` for NiN, say).
    """
    prof = runtime.profile
    rec = recipe(model_name, prof.name)
    if epochs is not None:
        rec = replace(rec, epochs=epochs)
    if batch_size is not None:  # the global batch: under torchrun each process takes its share
        rec = replace(rec, batch_size=batch_size)
    if lr is not None:  # every hyperparameter a command line changes goes into the recipe, which run follows
        rec = replace(rec, lr=lr)
    device = runtime.device
    if dataset == "fashion-mnist":
        limits = [n for n in (prof.train_per_class, rec.train_per_class) if n is not None]
        train_set = data.fashion_mnist("train").per_class(min(limits) if limits else None)
        test_set = data.fashion_mnist("test").per_class(prof.test_per_class)
        channels, num_classes = 1, 10
    elif dataset == "imagenette":
        side = max(rec.resolution, 64) if prof.small_models else min(rec.resolution + rec.resolution // 7, 256)
        train_set = data.imagenette("train", side, per_class=prof.train_per_class)
        test_set = data.imagenette("val", side, per_class=prof.test_per_class)
        channels, num_classes = 3, 10
        rec = replace(rec, augment="crop")
    else:
        raise ValueError(f"dataset must be 'fashion-mnist' or 'imagenette', not {dataset!r}")

    seed_everything(seed)
    options = {**dict(rec.options), **model_options}
    if prof.small_models:
        model = models.build_small(model_name, num_classes, channels, **options)
    else:
        model = models.build(model_name, num_classes, channels, **options)
    common = dict(resolution=rec.resolution, device=device, channels_last=True)
    train = data.DeviceLoader(train_set, rec.batch_size, shuffle=True, augment=rec.augment, seed=seed, **common)
    test = data.DeviceLoader(test_set, 512, **common)
    return Experiment(model, train, test, rec, runtime, dataset, dict(model_options))


def run(experiment: Experiment, **fit_options) -> History:
    """Train an experiment with its recipe's optimiser settings (``fit_options`` override them)."""
    rec = experiment.recipe
    settings = dict(epochs=rec.epochs, optimizer=rec.optimizer, lr=rec.lr, weight_decay=rec.weight_decay,
                    label_smoothing=rec.label_smoothing, device=experiment.runtime.device,
                    bf16=experiment.runtime.bf16, stored=experiment.runtime.stored,
                    meta={"model_name": rec.model, "profile": experiment.profile, "dataset": experiment.dataset,
                          "resolution": rec.resolution, "train_images": experiment.train.dataset_size,
                          "test_images": experiment.test.dataset_size})
    settings.update(fit_options)
    return fit(experiment.model, experiment.train, experiment.test, **settings)
