"""The closing chapter's comparison of every architecture: stored chapter runs read back, costs and latency.

- ``stored_runs``: the Fashion-MNIST runs that ``chapter.train_and_report`` printed into the executed
  chapters (``chapters/0*.ipynb``), with the profile and machine each ran on. Nothing is typed in: a
  chapter that was not executed, or whose output is not what ``train_and_report`` prints, is refused with
  the command that fixes it.
- ``build_all``, ``costs`` and ``latency``: the paper configurations of ``book.models`` at 224 px, counted
  by FlopCounterMode and timed on this CPU.
- ``comparison``: one row per architecture, the paper's numbers (``papers.IMAGENET``) beside ours.
- ``pareto_front``: the points that no other point beats on both cost and accuracy.
"""

from __future__ import annotations

import ast
import re
import statistics
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import torch
from torch import nn

from . import models, papers, profiles, summary

CHAPTERS_DIR = Path(__file__).resolve().parents[1] / "chapters"
IMAGE = (1, 3, 224, 224)
# Chapters that must exist and hold at least one train_and_report run, and chapters still being written,
# which count as "not run yet" while they are missing or not executed.
REQUIRED = ("01_alexnet", "02_vgg", "03_nin", "04_googlenet", "05_batchnorm", "06_resnet", "07_densenet")
PENDING = ("08_vit_coatnet",)
FIX = "run `make chapters` (or `python -m book.notebooks {path} --force`)"

_RECIPE = re.compile(r"^Recipe\(.*\)$")
_PARAMS = re.compile(r"^([\d,]+) parameters, ([\d,]+) training images$")
_RESULT = re.compile(r"^test accuracy (\d+(?:\.\d+)?) after (\d+) epochs?, (\d+(?:\.\d+)?) min of training$")
_IMAGENETTE = re.compile(r"^Imagenette validation accuracy (\d+(?:\.\d+)?)$")
_MACHINE_KEYS = ("profile", "device", "cpu_capability")


class StoredRunError(RuntimeError):
    """A chapter's stored output cannot be read as a train_and_report run; the message says how to fix it."""


@dataclass(frozen=True)
class StoredRun:
    """One ``train_and_report`` run as a chapter stored it, and where it ran."""

    chapter: str                 # notebook stem, "06_resnet"
    cell: int                    # index of the cell that printed it
    recipe: profiles.Recipe
    options: dict | None         # the call's own model options (``head="fc"``), None if they cannot be read
    params: int
    train_images: int
    test_accuracy: float
    epochs: int
    train_minutes: float         # as printed, to 0.1 min
    imagenette_accuracy: float | None
    profile: str
    device: str
    cpu_capability: str
    cpu_count: int | None
    bf16: bool
    executed_at: str

    @property
    def model(self) -> str:
        return self.recipe.model

    @property
    def machine(self) -> str:
        """"cpu profile on cpu (AVX2, 2 cores)": what every number of this run depends on."""
        cores = f", {self.cpu_count} cores" if self.cpu_count else ""
        precision = ", bf16" if self.bf16 else ""
        return f"{self.profile} profile on {self.device} ({self.cpu_capability}{cores}{precision})"


@dataclass
class StoredRuns:
    runs: list[StoredRun] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)  # pending chapters that are missing or not executed

    def get(self, model: str) -> StoredRun | None:
        """The run of ``model``; the last one in chapter order if several chapters train it."""
        found = [run for run in self.runs if run.model == model]
        return found[-1] if found else None

    def machines(self) -> set[tuple[str, str, str]]:
        """The distinct (profile, device, ISA) the runs come from: more than one means mixed numbers."""
        return {(run.profile, run.device, run.cpu_capability) for run in self.runs}


def _stdout(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            text = output.get("text", "")
            parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


def _calls_train_and_report(source: str) -> bool:
    return "train_and_report(" in source


def _recipe(line: str, where: str, fix: str) -> profiles.Recipe:
    """Parse the printed ``Recipe(model='alexnet', ...)`` line: keyword literals only, no code is run."""
    try:
        call = ast.parse(line, mode="eval").body
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Recipe"
                and not call.args):
            raise ValueError("not a Recipe(...) call with keyword arguments")
        values = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        known = {f.name for f in fields(profiles.Recipe)}
        if unknown := set(values) - known:
            raise ValueError(f"fields today's Recipe does not have: {', '.join(sorted(unknown))}")
        return profiles.Recipe(**values)
    except (SyntaxError, ValueError, TypeError) as error:
        raise StoredRunError(f"{where}: cannot read the recipe line {line!r} ({error}); {fix}") from None


def _call_options(source: str, model: str) -> dict | None:
    """The literal keyword options of ``train_and_report(model, ...)`` in a cell's source, {} if none.

    The printed recipe holds the profile's model options only; options given to the call itself (NiN's
    ``head="fc"``, say) change the network too. None when they cannot be read (not literals, magics)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name != "train_and_report" or not node.args or not isinstance(node.args[0], ast.Constant):
            continue
        if node.args[0].value != model:
            continue
        if any(kw.arg is None for kw in node.keywords):  # **options: unknown here
            return None
        try:
            return {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
        except ValueError:
            return None
    return None  # no call with the model's name as a literal


def _machine(notebook, where: str, fix: str) -> dict:
    meta = notebook.metadata.get("modern_cnns")
    if not meta:
        raise StoredRunError(f"{where} has no `modern_cnns` metadata, so it was not executed by book.notebooks "
                             f"and its numbers cannot be traced to a profile and machine; {fix}")
    missing = [key for key in _MACHINE_KEYS if key not in meta]
    if missing:
        raise StoredRunError(f"{where}: its `modern_cnns` metadata lacks {', '.join(missing)}; {fix}")
    return meta


def read_chapter(path: Path) -> list[StoredRun]:
    """Every ``train_and_report`` run stored in the executed notebook ``path``, in order.

    A run is three printed lines: ``Recipe(...)``, "N parameters, M training images" and, after the epochs,
    "test accuracy A after E epochs, T min of training". A recipe without its result, a result without a
    recipe, or a cell that calls ``train_and_report`` but holds no run, is refused.
    """
    path = Path(path)
    fix = FIX.format(path=path)
    if not path.exists():
        raise StoredRunError(f"{path} does not exist; restore it from git, then {fix}")
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises several kinds for a file that is not a notebook
        raise StoredRunError(f"{path} is not a readable notebook ({type(error).__name__}: {error}); "
                             f"restore it from git, then {fix}") from None
    meta = None
    runs: list[StoredRun] = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        where = f"{path}, cell {index}"
        lines = [line.strip() for line in _stdout(cell).splitlines()]
        found = 0
        current = None  # the run being read: dict of what has been seen so far
        for number, line in enumerate(lines):
            if _RECIPE.match(line):
                if current is not None:
                    raise StoredRunError(f"{where}: the run of {current['recipe'].model!r} printed its recipe but "
                                         f"no 'test accuracy' line before the next run began; {fix}")
                recipe = _recipe(line, where, fix)
                following = lines[number + 1] if number + 1 < len(lines) else ""
                counts = _PARAMS.match(following)
                if not counts:
                    raise StoredRunError(f"{where}: the recipe of {recipe.model!r} is not followed by "
                                         f"'N parameters, M training images' (found {following!r}); {fix}")
                current = dict(recipe=recipe, params=int(counts[1].replace(",", "")),
                               train_images=int(counts[2].replace(",", "")))
            elif match := _RESULT.match(line):
                if current is None:
                    raise StoredRunError(f"{where}: {line!r} follows no Recipe(...) line; {fix}")
                if meta is None:
                    meta = _machine(notebook, str(path), fix)
                imagenette = next((float(m[1]) for later in lines[number + 1:]
                                   if (m := _IMAGENETTE.match(later))), None)
                runs.append(StoredRun(
                    chapter=path.stem, cell=index, recipe=current["recipe"],
                    options=_call_options(cell.source, current["recipe"].model), params=current["params"],
                    train_images=current["train_images"], test_accuracy=float(match[1]), epochs=int(match[2]),
                    train_minutes=float(match[3]), imagenette_accuracy=imagenette, profile=meta["profile"],
                    device=meta["device"], cpu_capability=meta["cpu_capability"], cpu_count=meta.get("cpu_count"),
                    bf16=bool(meta.get("bf16", False)), executed_at=meta.get("executed_at", "")))
                found += 1
                current = None
        if current is not None:
            raise StoredRunError(f"{where}: the run of {current['recipe'].model!r} printed its recipe but no "
                                 f"'test accuracy ... min of training' line (interrupted, or its output was "
                                 f"cleared); {fix}")
        if _calls_train_and_report(cell.source) and not found:
            raise StoredRunError(f"{where} calls train_and_report but holds no stored run (not executed, or "
                                 f"its output was cleared); {fix}")
    return runs


def _executed(path: Path) -> bool:
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception:  # unreadable: read_chapter refuses it with the fix
        return True
    return bool(notebook.metadata.get("modern_cnns")) or any(
        cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def stored_runs(chapters_dir: Path | str | None = None, *, required=REQUIRED, pending=PENDING) -> StoredRuns:
    """The runs of every ``required`` chapter and of every ``pending`` chapter that has been executed.

    A required chapter that is missing, not executed, or without any run is an error; a pending chapter
    (one being written) that is missing or not executed yet is listed in ``not_run`` instead.
    """
    folder = Path(chapters_dir) if chapters_dir is not None else CHAPTERS_DIR
    result = StoredRuns()
    for stem in (*required, *pending):
        path = folder / f"{stem}.ipynb"
        if stem in pending and (not path.exists() or not _executed(path)):
            result.not_run.append(stem)
            continue
        runs = read_chapter(path)
        if stem in required and not runs:
            raise StoredRunError(f"{path} holds no train_and_report run (the chapter should train its network); "
                                 f"{FIX.format(path=path)}")
        result.runs.extend(runs)
    return result


# --------------------------------------------------------------------------- the trained (small) networks

def trained_model(run: StoredRun) -> nn.Module:
    """The network that ``run`` trained, built again from its recipe and call options (untrained)."""
    options = {**dict(run.recipe.options), **(run.options or {})}
    if profiles.get_profile(run.profile).small_models:
        return models.build_small(run.model, 10, 1, **options)
    return models.build(run.model, 10, 1, **options)


def trained_costs(run: StoredRun) -> dict:
    """Parameters and multiply-adds of the trained network at its training resolution, measured.

    ``matches`` is False when today's code builds a network with another parameter count than the run
    printed (the chapter ran older code, or options the parser could not read): its MACs are then None.
    """
    model = trained_model(run)
    counted = summary.count(model, (1, 1, run.recipe.resolution, run.recipe.resolution))
    matches = counted["params"] == run.params
    return {"params": run.params, "macs": counted["macs"] if matches else None,
            "resolution": run.recipe.resolution, "matches": matches}


# --------------------------------------------------------------------------- every architecture at 224 px

@dataclass(frozen=True)
class Architecture:
    label: str
    model: str | None          # name for models.build; None: the book has no model of it
    paper: str                 # key of papers.IMAGENET
    trained: str | None        # the model whose stored Fashion-MNIST run is this architecture's; None: not trained
    chapter: str               # the chapter that teaches it
    note: str = ""             # what stands in the Fashion-MNIST column when there is no run


ARCHITECTURES = (
    Architecture("AlexNet", "alexnet", "alexnet", "alexnet", "01_alexnet"),
    Architecture("VGG-11", "vgg11", "vgg11", "vgg11", "02_vgg"),
    Architecture("VGG-16", "vgg16", "vgg16", None, "02_vgg", "not trained (ch. 2 trains VGG-11)"),
    Architecture("NiN", "nin", "nin", "nin", "03_nin"),
    Architecture("GoogLeNet", "googlenet", "googlenet", "googlenet", "04_googlenet"),
    Architecture("BN-Inception", None, "bn_inception", None, "05_batchnorm", "no model (ch. 5 trains LeNet-BN)"),
    Architecture("ResNet-18", "resnet18", "resnet18", "resnet18", "06_resnet"),
    Architecture("ResNet-34", "resnet34", "resnet34", None, "06_resnet", "not trained (ch. 6 trains ResNet-18)"),
    Architecture("ResNet-50", "resnet50", "resnet50", None, "06_resnet", "not trained (ch. 6 trains ResNet-18)"),
    Architecture("DenseNet-121", "densenet121", "densenet121", "densenet121", "07_densenet"),
    Architecture("ViT-B/16", "vit", "vit", "vit", "08_vit_coatnet"),
    Architecture("CoAtNet-0", "coatnet", "coatnet", "coatnet", "08_vit_coatnet"),
)


def build_all(architectures=ARCHITECTURES) -> dict[str, nn.Module]:
    """{label: the paper configuration in eval mode} for every architecture that book.models has."""
    return {a.label: models.build(a.model).eval() for a in architectures if a.model is not None}


def costs(networks: dict[str, nn.Module], image: tuple[int, ...] = IMAGE) -> dict[str, dict[str, int]]:
    """{label: {"params", "macs"}} measured by ``summary.count`` (FlopCounterMode) at ``image``."""
    return {label: summary.count(net, image) for label, net in networks.items()}


def latency(networks: dict[str, nn.Module], *, warmup: int = 2, repeats: int = 5,
            image: tuple[int, ...] = IMAGE) -> dict[str, list[float]]:
    """Seconds of each forward pass of one image, ``repeats`` per network after ``warmup`` passes.

    The networks take turns within each round, so that a slower or busier moment of the machine falls on
    all of them alike instead of on whichever was timed then. Under ``torch.inference_mode``.
    """
    x = torch.randn(image)
    times: dict[str, list[float]] = {label: [] for label in networks}
    with torch.inference_mode():
        for net in networks.values():
            for _ in range(warmup):
                net(x)
        for _ in range(repeats):
            for label, net in networks.items():
                started = time.perf_counter()
                net(x)
                times[label].append(time.perf_counter() - started)
    return times


@dataclass
class Row:
    """One architecture: the paper's numbers, ours at 224 px, and its Fashion-MNIST run."""

    architecture: Architecture
    paper: papers.ImageNetResult
    params: int | None = None
    macs: int | None = None
    latency_s: float | None = None      # median seconds per image, batch 1
    latency_ratio: float | None = None  # to AlexNet's
    run: StoredRun | None = None
    status: str = ""                    # why there is no run


def comparison(runs: StoredRuns, measured: dict[str, dict[str, int]],
               times: dict[str, list[float]] | None = None, architectures=ARCHITECTURES,
               reference: str = "AlexNet") -> list[Row]:
    """One ``Row`` per architecture; latency as the median of ``times`` and its ratio to ``reference``'s."""
    medians = {label: statistics.median(values) for label, values in (times or {}).items()}
    rows = []
    for arch in architectures:
        row = Row(arch, papers.IMAGENET[arch.paper])
        if arch.label in measured:
            row.params, row.macs = measured[arch.label]["params"], measured[arch.label]["macs"]
        if arch.label in medians:
            row.latency_s = medians[arch.label]
            if reference in medians:
                row.latency_ratio = medians[arch.label] / medians[reference]
        if arch.trained is None:
            row.status = arch.note
        elif (run := runs.get(arch.trained)) is not None:
            row.run = run
        else:
            row.status = "not run yet" if arch.chapter in runs.not_run else f"no run in {arch.chapter}"
        rows.append(row)
    return rows


def _paper(value: float | None, scale: float = 1.0, digits: int | None = None) -> str:
    if value is None:
        return "not reported"
    value = value / scale
    return f"{value:.{digits}f}" if digits is not None else str(value)  # an error as the paper prints it


def table(rows: list[Row]) -> summary.Table:
    """The closing table: paper columns ("not reported" where the paper has none), then ours."""
    result = summary.Table(
        ["architecture", "top-1 err % (paper)", "top-5 err % (paper)", "params M (paper)", "GMACs (paper)",
         "params M (ours)", "GMACs (ours)", "ms per image", "× AlexNet", "F-MNIST acc.", "train min", "run"],
        title="Every architecture: the papers' ImageNet numbers, ours at 224 px, and our Fashion-MNIST runs")
    for row in rows:
        p = row.paper
        # strings, so that every row of a column shows the same decimals
        ours = ([f"{row.params / 1e6:.1f}", f"{row.macs / 1e9:.2f}"] if row.params is not None
                else ["no model"] * 2)
        timing = ([f"{row.latency_s * 1e3:.1f}", f"{row.latency_ratio:.2f}" if row.latency_ratio else ""]
                  if row.latency_s is not None else ["", ""])
        run = row.run
        fashion = ([f"{run.test_accuracy:.4f}", f"{run.train_minutes:.1f}", f"{run.profile}/{run.cpu_capability}"]
                   if run else [row.status, "", ""])
        result.rows.append([row.architecture.label, _paper(p.top1_error), _paper(p.top5_error),
                            _paper(p.params, 1e6, 1), _paper(p.macs, 1e9, 2), *ours, *timing, *fashion])
    return result


def sources(rows: list[Row]) -> summary.Table:
    """Where each paper number comes from and how it was measured."""
    result = summary.Table(["architecture", "evaluation", "source"], title="Sources of the paper columns")
    for row in rows:
        result.rows.append([row.architecture.label, row.paper.evaluation, row.paper.source])
    return result


def runs_table(runs: StoredRuns, small: dict[str, dict]) -> summary.Table:
    """The stored Fashion-MNIST runs, with the trained network's measured cost and where each ran."""
    result = summary.Table(["chapter", "model", "px", "params", "MMACs", "epochs", "test acc.", "train min",
                            "ran on", "executed"], title="Stored Fashion-MNIST runs (small configurations)")
    for run in runs.runs:
        macs = small[run.model]["macs"]
        result.rows.append([run.chapter, run.model, run.recipe.resolution, run.params,
                            f"{macs / 1e6:.1f}" if macs is not None else "code changed", run.epochs,
                            f"{run.test_accuracy:.4f}", f"{run.train_minutes:.1f}", run.machine,
                            run.executed_at[:10]])
    for stem in runs.not_run:
        result.rows.append([stem, "", "", "", "", "", "not run yet", "", "", ""])
    return result


# --------------------------------------------------------------------------- Pareto front

def pareto_front(points) -> list[tuple[float, float]]:
    """The (cost, accuracy) points that no other point dominates, sorted by cost.

    A point is dominated when another costs no more and is no less accurate, and is better in one of the
    two. Lower cost and higher accuracy are better; equal points do not dominate each other.
    """
    points = [(float(x), float(y)) for x, y in points]
    front = [p for p in points
             if not any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in points)]
    return sorted(front)


def _label(ax, xy: dict[str, tuple[float, float]], fontsize: int = 8) -> None:
    """Name each point at the first nearby spot where its label overlaps no marker, label or legend."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken = [Bbox.from_bounds(px - 5, py - 5, 10, 10) for px, py in (ax.transData.transform(p) for p in xy.values())]
    if ax.get_legend() is not None:
        taken.append(ax.get_legend().get_window_extent(renderer))
    spots = [(5, 4, "left", "bottom"), (-5, 4, "right", "bottom"), (5, -4, "left", "top"),
             (-5, -4, "right", "top"), (0, 7, "center", "bottom"), (0, -7, "center", "top")]
    spots += [(dx, dy + lift * (1 if dy > 0 else -1), ha, va) for lift in (10, 20) for dx, dy, ha, va in spots]
    for text, point in sorted(xy.items(), key=lambda item: item[1]):
        for dx, dy, ha, va in spots:
            note = ax.annotate(text, point, textcoords="offset points", xytext=(dx, dy), ha=ha, va=va,
                               fontsize=fontsize)
            box = note.get_window_extent(renderer).expanded(1.05, 1.1)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in taken):
                taken.append(box)
                break
            note.remove()
        else:  # no free spot: a label on top of another is better than none
            ax.annotate(text, point, textcoords="offset points", xytext=(5, 4), fontsize=fontsize)


def pareto_plot(points: dict[str, tuple[float, float, float]], *, title: str = ""):
    """Accuracy against multiply-adds and against parameters, one dot per network, Pareto front dashed.

    ``points`` maps a label to (multiply-adds, parameters, accuracy). Both x axes are logarithmic."""
    fig, axes = plt.subplots(2, 1, figsize=(6.8, 6.4))  # the book's column width, one panel above the other
    for ax, index, name in ((axes[0], 0, "multiply-adds per image"), (axes[1], 1, "parameters")):
        xy = {label: (values[index], values[2]) for label, values in points.items()}
        front = pareto_front(xy.values())
        colours = ["tab:red" if point in front else "tab:blue" for point in xy.values()]
        ax.scatter([x for x, _ in xy.values()], [y for _, y in xy.values()], s=36, c=colours, zorder=3)
        if front:
            ax.plot(*zip(*front), "--", color="tab:red", lw=1, label="Pareto front (red dots)", zorder=2)
            ax.legend(fontsize=8, loc="upper left")
        ax.set_xscale("log")
        ax.margins(x=0.25, y=0.12)
        ax.set_xlabel(f"{name} (log scale)")
        ax.set_ylabel("Fashion-MNIST test accuracy")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    for ax, index in ((axes[0], 0), (axes[1], 1)):
        _label(ax, {label: (values[index], values[2]) for label, values in points.items()})
    return fig
