"""What every chapter repeats, kept here so that a chapter holds only its derivation,
claims and prose.

- ``banner``: the profile and the machine the numbers below come from, as the chapter's
  ``Runtime``.
- ``train_and_report``: the profile's recipe trained, a confusion matrix, Imagenette
  where asked, and the run stored as data (``book.runs``) for the closing comparison.
- ``first_layer_filters`` and ``look_inside``: colour filters, feature maps and the
  explorer.
- ``Study`` and ``claim_study``: a paper's claim run over seeds and judged against the
  spread.
"""

from __future__ import annotations

import hashlib
import inspect
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from IPython.display import display

from . import data, models, profiles, runs, viz
from .experiment import Experiment, prepare, run
from .runtime import Runtime
from .train import History, evaluate, fit, predict, seed_everything

SEEDS = (0, 1, 2)


def banner(profile: str | None = None) -> Runtime:
    """Decide the chapter's ``Runtime`` once (profile, device, bf16, stored run) and
    print it: every number in the chapter depends on it. The chapter passes it on to
    ``train_and_report`` and ``Study``."""
    runtime = Runtime.detect(profile)
    print(f"profile: {runtime.profile.name} ({runtime.profile.description})\ndevice: {runtime.describe()}")
    if runtime.profile.name == "smoke":
        print("smoke profile: every number below only shows that the code runs; no claim can be judged from it.")
    return runtime


# --------------------------------------------------------------------------- train and report

@dataclass
class Trained:
    experiment: Experiment
    history: History
    imagenette: Experiment | None = None  # the same architecture trained on Imagenette (gpu profile)

    @property
    def model(self) -> nn.Module:
        return self.experiment.model

    @property
    def runtime(self) -> Runtime:
        return self.experiment.runtime

    @property
    def test(self) -> data.DeviceLoader:
        return self.experiment.test

    def test_images(self, count: int = 8) -> tuple[torch.Tensor, list[str]]:
        """The first ``count`` test images, normalised as the model sees them, and their
        class names."""
        test = self.experiment.test
        images = test.transform(test.images[:count])
        return images, [test.classes[i] for i in test.labels[:count].tolist()]


def train_and_report(runtime: Runtime, model_name: str, title: str, **model_options) -> Trained:
    """Train ``model_name`` with the profile's recipe, show where it errs (confusion
    matrix), and store the run as data (``book.runs``: recipe, options, runtime,
    history), which the closing chapter reads back."""
    experiment = prepare(model_name, runtime, **model_options)
    params = sum(p.numel() for p in experiment.model.parameters())
    print(f"{experiment.recipe}\n{params:,} parameters, {experiment.train.dataset_size:,} training images")
    history = run(experiment)
    print(f"test accuracy {history.final_val_acc:.4f} after {len(history.records)} epochs, "
          f"{history.train_seconds / 60:.1f} min of training")
    predicted, actual = predict(experiment.model, experiment.test)
    viz.confusion_matrix(predicted, actual, experiment.test.classes, title=f"{title} on the Fashion-MNIST test set")
    plt.show()
    trained = Trained(experiment, history)
    imagenette_history = None
    if runtime.profile.imagenette:
        trained.imagenette = prepare(model_name, runtime, dataset="imagenette", **model_options)
        imagenette_history = run(trained.imagenette)
        print(f"Imagenette validation accuracy {imagenette_history.final_val_acc:.4f}")
    else:
        print("Imagenette training of the full-size network runs in the gpu profile only.")
    display(runs.bundle(runs.record(experiment, history, title, params, imagenette_history)), raw=True)
    return trained


# --------------------------------------------------------------------------- look inside

def _first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def first_layer_probe(model_name: str) -> nn.Module:
    """The paper network's first convolution (its kernel, stride and width, on colour
    input), then a small head that is cheap to train. The first layer starts from N(0,
    0.01²), AlexNet's initialisation (Krizhevsky et al. 2012 §5), so that what it shows
    was learned, not left over from the start."""
    first = _first_conv(models.build(model_name))
    conv = nn.Conv2d(3, first.out_channels, first.kernel_size, first.stride, first.padding)
    nn.init.normal_(conv.weight, 0.0, 0.01)
    width = first.out_channels
    return nn.Sequential(
        conv, nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(width, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.Conv2d(128, 256, 3, stride=2, padding=1), nn.BatchNorm2d(256), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 10),
    )


def _probe_cache(conv: nn.Conv2d, profile: profiles.Profile, resolution: int, epochs: int) -> Path:
    """Where a probe's learned first layer is kept. The key is everything that decides
    the weights: the layer's shape, the data, the epochs and the seed. GoogLeNet, ResNet
    and DenseNet share conv1 (7×7/2, 64), so their chapters share one probe instead of
    training it three times. The probe's own source is hashed into the key, so that
    editing the probe retires its old weights."""
    code = hashlib.sha1(inspect.getsource(first_layer_probe).encode()).hexdigest()[:8]
    key = (f"{conv.out_channels}x{conv.kernel_size[0]}s{conv.stride[0]}p{conv.padding[0]}-{profile.name}"
           f"-{resolution}px-{epochs}ep-seed0-{code}")
    return data.cache_dir() / "probes" / f"conv1-{key}.safetensors"


def first_layer_filters(model_name: str, trained: Trained | None = None, *, runtime: Runtime | None = None,
                        resolution: int | None = None, epochs: int = 3):
    """Colour first-layer filters learned on Imagenette, drawn as images.

    In the gpu profile they come from the full network trained on Imagenette. Elsewhere
    the chapter's small network sees grey 28-32 px images through a 3×3 stem, whose
    filters say little; so a probe (``first_layer_probe``) learns the paper's first
    layer on 64 px Imagenette in under a minute on two cores (32 px for a stride-1 layer such as
    VGG's, which costs four times as much per pixel). The learned layer is cached
    (``BOOK_CACHE_DIR/probes``) and reused by any chapter whose conv1 has the same
    shape.
    """
    if (trained is None) == (runtime is None):
        raise TypeError("first_layer_filters needs the chapter's trained network or, for a probe alone, its runtime")
    runtime = runtime or trained.runtime
    if trained is not None and trained.imagenette is not None:
        conv, source = _first_conv(trained.imagenette.model), "the full network trained on Imagenette"
    else:
        profile = runtime.profile
        seed_everything(0)
        probe = first_layer_probe(model_name)
        conv = probe[0]
        resolution = resolution or (64 if conv.stride[0] > 1 else 32)
        epochs = 1 if profile.name == "smoke" else epochs
        cache = _probe_cache(conv, profile, resolution, epochs)
        if cache.exists():
            conv.load_state_dict(load_file(cache))
            source = f"a probe on Imagenette at {resolution} px (cached: {cache.name})"
            print(f"probe loaded from the cache; delete {cache} to train it again")
        else:
            train_set = data.imagenette("train", resolution, per_class=profile.train_per_class)
            val_set = data.imagenette("val", resolution, per_class=profile.test_per_class)
            loader = data.DeviceLoader(train_set, 128, shuffle=True, augment="crop", resolution=resolution,
                                       channels_last=True, device=runtime.device)
            history = fit(probe, loader, data.DeviceLoader(val_set, 512, resolution=resolution, device=runtime.device),
                          epochs=epochs, lr=0.1, bf16=runtime.bf16, stored=runtime.stored, progress=False,
                          live_plot=False)
            cache.parent.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous() for k, v in conv.state_dict().items()}, cache)
            source = f"a probe on {len(train_set):,} Imagenette images at {resolution} px"
            print(f"probe: {len(history.records)} epochs, {history.train_seconds:.0f} s, "
                  f"Imagenette validation accuracy {history.final_val_acc:.3f}")
    k = conv.kernel_size[0]
    print(f"first-layer filters learned by {source}")
    viz.filter_grid(conv.weight, title=f"first layer: {conv.out_channels} colour {k}x{k} filters (first 64)"
                    if conv.out_channels > 64 else f"first layer: {conv.out_channels} colour {k}x{k} filters")
    plt.show()
    return conv


def look_inside(trained: Trained, layers: list[str], *, rows: list[str] | None = None, images: int = 8):
    """Feature maps of one test image at ``rows`` (default: every layer), then the
    explorer over ``layers``."""
    pictures, names = trained.test_images(images)
    print(f"test image 0 is {'an' if names[0][0].lower() in 'aeiou' else 'a'} {names[0].lower()}")
    viz.feature_maps(trained.model, pictures[0], rows or layers, channels=8)
    plt.show()
    return viz.feature_explorer(trained.model, pictures, layers, labels=names)


def layers_of(model: nn.Module, kind: type, prefix: str = "") -> list[str]:
    """The names of ``model``'s modules of ``kind`` (under ``prefix``), in order."""
    return [name for name, m in model.named_modules() if isinstance(m, kind) and name.startswith(prefix)]


# --------------------------------------------------------------------------- claim studies

class Study:
    """The side experiments' data: a balanced subset of Fashion-MNIST, at
    ``resolution``, in every profile."""

    def __init__(self, runtime: Runtime, resolution: int = 32, test_per_class: int | None = None):
        self.runtime, self.profile = runtime, runtime.profile
        per_class = self.profile.study_per_class
        self.resolution = resolution
        self.train_set = data.fashion_mnist("train").per_class(per_class)
        self.train_eval = self._loader(self.train_set, 500)
        # ``test_per_class`` (at most the profile's) makes the many evaluations of a
        # large study cheaper
        self.test_set = data.fashion_mnist("test").per_class(min(per_class, test_per_class or per_class))
        self.test = self._loader(self.test_set, 500)
        self._tests = {resolution: self.test}  # the test set at each resolution train_subset has used

    def _loader(self, images: data.ImageSet, batch_size: int, *, resolution: int | None = None,
                seed: int | None = None) -> data.DeviceLoader:
        """A loader on the runtime's device; shuffled when it has a ``seed``."""
        options = dict(shuffle=True, seed=seed) if seed is not None else {}
        return data.DeviceLoader(images, batch_size, resolution=resolution or self.resolution,
                                 device=self.runtime.device, **options)

    def _fit(self, net: nn.Module, loader: data.DeviceLoader, **options) -> History:
        """``fit`` with the runtime's precision, quietly: a study prints one line per
        run instead."""
        return fit(net, loader, bf16=self.runtime.bf16, stored=self.runtime.stored, progress=False,
                   live_plot=False, **options)

    def loader(self, seed: int, batch_size: int = 64) -> data.DeviceLoader:
        return self._loader(self.train_set, batch_size, seed=seed)

    def train(self, build: Callable[[], nn.Module], seed: int, *, lr: float, epochs: int | None = None) -> dict:
        """Build a network under ``seed``, train it, and return its train and test
        accuracy and their gap."""
        seed_everything(seed)
        net = build()
        self._fit(net, self.loader(seed), epochs=epochs or self.profile.study_epochs * 3, lr=lr)
        train_acc, test_acc = evaluate(net, self.train_eval)[1], evaluate(net, self.test)[1]
        return dict(train=train_acc, test=test_acc, gap=train_acc - test_acc)

    def train_subset(self, build: Callable[[], nn.Module], seed: int, *, per_class: int, epochs: int, lr: float,
                     optimizer: str = "sgd", weight_decay: float = 5e-4, resolution: int | None = None,
                     batch_size: int = 64) -> dict:
        """Train on the first ``per_class`` training images of every class (not the
        study's own subset), then return the training loss and accuracy (on up to 200 of
        those images per class), the test accuracy and the gap. For claims about data
        size: the same code at every size, only ``per_class`` changes."""
        resolution = resolution or self.resolution
        if resolution not in self._tests:
            self._tests[resolution] = self._loader(self.test_set, 500, resolution=resolution)
        subset = data.fashion_mnist("train").per_class(per_class)   # the full set is loaded once (lru_cache)
        seed_everything(seed)
        net = build()
        self._fit(net, self._loader(subset, batch_size, resolution=resolution, seed=seed), epochs=epochs, lr=lr,
                  optimizer=optimizer, weight_decay=weight_decay)
        fitted = self._loader(subset.per_class(min(per_class, 200)), 500, resolution=resolution)
        train_loss, train_acc = evaluate(net, fitted)
        test_acc = evaluate(net, self._tests[resolution])[1]
        return dict(train_loss=train_loss, train=train_acc, test=test_acc, gap=train_acc - test_acc)


def verdict(difference: float, spread: float) -> str:
    """A claim that ``difference`` > 0 holds only when it exceeds the spread; the
    reverse does not hold."""
    if abs(difference) <= spread:
        return "inconclusive at this scale"
    return "holds" if difference > 0 else "does not hold"


@dataclass
class ClaimResult:
    """Each side's values over seeds, and the verdict on "``better`` beats ``worse``"
    for one metric."""

    claim: str
    metric: str
    values: dict[str, list[float]]
    better: str
    worse: str
    higher_is_better: bool = True
    extra: dict[str, list[dict]] = field(default_factory=dict)  # every metric of every run

    def mean_sd(self, side: str) -> tuple[float, float]:
        values = self.values[side]
        return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

    @property
    def difference(self) -> float:
        """Mean of ``better`` minus mean of ``worse``, signed so that > 0 favours the claim."""
        sign = 1 if self.higher_is_better else -1
        return sign * (self.mean_sd(self.better)[0] - self.mean_sd(self.worse)[0])

    @property
    def spread(self) -> float:
        """The standard deviation of a difference of two runs: sqrt(sd_better² + sd_worse²)."""
        return (self.mean_sd(self.better)[1] ** 2 + self.mean_sd(self.worse)[1] ** 2) ** 0.5

    @property
    def verdict(self) -> str:
        return verdict(self.difference, self.spread)

    def summary(self) -> str:
        counts = all(float(v).is_integer() for values in self.values.values() for v in values)
        d = 0 if counts else 3  # steps are whole numbers: no decimals
        sides = "; ".join(f"{side} {m:.{d}f} ± {s:.{d}f}" for side, (m, s) in
                          ((side, self.mean_sd(side)) for side in self.values))
        n = len(next(iter(self.values.values())))
        return (f"{self.claim}: {self.metric} over {n} seeds (mean ± sd): {sides}. Difference "
                f"{self.difference:+.{d}f} in the claim's favour, spread {self.spread:.{d}f}: {self.verdict}.")

    def on(self, key: str, claim: str, *, higher_is_better: bool = True,
           metric: str | None = None) -> "ClaimResult":
        """The same runs judged on another of their metrics (the test accuracy beside
        the gap, say); ``metric`` names it in the summary (default: ``key``)."""
        values = {side: [float(record[key]) for record in records]
                  for side, records in self.extra.items()}
        return ClaimResult(claim, metric or key, values, self.better, self.worse,
                           higher_is_better, self.extra)

    def plot(self, ax=None):
        """Each seed as a dot, each side's mean ± sd as a bar: the spread is visible,
        not only stated."""
        ax = ax or plt.subplots(figsize=(4.2, 0.5 + 0.45 * len(self.values)))[1]
        for row, (side, values) in enumerate(self.values.items()):
            mean, sd = self.mean_sd(side)
            ax.errorbar(mean, row, xerr=sd, fmt="s", color="black", capsize=4, zorder=2)
            ax.scatter(values, [row] * len(values), color="tab:orange", alpha=0.8, zorder=3)
        ax.set_yticks(range(len(self.values)), list(self.values))
        ax.set_ylim(-0.6, len(self.values) - 0.4)
        ax.set_xlabel(self.metric)
        ax.set_title(f"{self.verdict} (dots: seeds; bars: mean ± sd)", fontsize=10)
        ax.grid(alpha=0.3, axis="x")
        ax.figure.tight_layout()
        return ax


def _number(value) -> str:
    """3 decimals for a measurement, none for a count (steps) that happens to be stored
    as a float."""
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 10 else f"{value:.3f}"
    return str(value)


def claim_study(claim: str, sides: dict[str, Callable[[int], dict | float]], *, metric: str, better: str,
                worse: str, key: str | None = None, higher_is_better: bool = True, seeds=SEEDS,
                plot: bool = True) -> ClaimResult:
    """Run every side of a comparison once per seed and judge "``better`` beats
    ``worse``" on ``metric``.

    A side is a function of the seed that returns a number, or a dict of numbers of
    which ``key`` is judged. Each run prints one line, so a long study shows its
    progress.
    """
    values: dict[str, list[float]] = {side: [] for side in sides}
    extra: dict[str, list[dict]] = {side: [] for side in sides}
    for side, run_side in sides.items():
        for seed in seeds:
            outcome = run_side(seed)
            record = outcome if isinstance(outcome, dict) else {metric: outcome}
            values[side].append(float(record[key] if key else record[metric]))
            extra[side].append(record)
            shown = ", ".join(f"{k} {_number(v)}" for k, v in record.items())
            print(f"  {side}, seed {seed}: {shown}")
    result = ClaimResult(claim, metric, values, better, worse, higher_is_better, extra)
    print(result.summary())
    if plot:
        result.plot()
        plt.show()
    return result
