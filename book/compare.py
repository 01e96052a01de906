"""The closing chapter's comparison of every architecture: stored chapter runs read
back, costs and latency.

- ``stored_runs``: the Fashion-MNIST runs that ``chapter.train_and_report`` stored as
  data (``book.runs``, an output of its own MIME type) in the executed chapters
  (``chapters/0*.ipynb``), with the profile and machine each ran on. Nothing is typed in
  and no printed text is parsed: a chapter that was not executed, or whose record is
  missing or of another version, is refused with the command that fixes it.
- ``all_architectures``, ``build_all``, ``costs`` and ``latency``: the paper
  configurations that the architectures' specs (``book.models.spec``) list for the
  comparison, at 224 px, counted by FlopCounterMode and timed on this CPU.
- ``comparison``: one row per architecture, the paper's numbers (``papers.IMAGENET``)
  beside ours.
- ``pareto_front``: the points that no other point beats on both cost and accuracy.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import torch
from torch import nn

from . import models, papers, profiles, runs, summary

CHAPTERS_DIR = Path(__file__).resolve().parents[1] / "chapters"
IMAGE = (1, 3, 224, 224)
FIX = "run `make chapters` (or `python -m book.notebooks {path} --force`)"


class StoredRunError(RuntimeError):
    """A chapter's stored output cannot be read as a train_and_report run; the message
    says how to fix it."""


@dataclass(frozen=True)
class StoredRun:
    """One ``train_and_report`` run as a chapter stored it, and where it ran."""

    chapter: str                 # notebook stem, "06_resnet"
    cell: int                    # index of the cell that stored it
    recipe: profiles.Recipe
    options: dict                # the call's own model options (``head="fc"``)
    params: int
    train_images: int
    test_accuracy: float
    epochs: int
    train_minutes: float
    imagenette_accuracy: float | None
    profile: str
    device: str
    cpu_capability: str
    cpu_count: int | None
    bf16: bool
    executed_at: str
    history: dict = field(default_factory=dict, repr=False)  # the per-epoch records (``History.to_dict``)

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
        """The distinct (profile, device, ISA) the runs come from: more than one means
        mixed numbers."""
        return {(run.profile, run.device, run.cpu_capability) for run in self.runs}


def _records(cell) -> list:
    """The run records among a cell's outputs, in order."""
    return [output["data"][runs.MIME] for output in cell.get("outputs", [])
            if output.get("output_type") in ("display_data", "execute_result") and runs.MIME in output.get("data", {})]


def _stored_run(record, chapter: str, cell: int, executed_at: str, where: str, fix: str) -> StoredRun:
    try:
        record = runs.check(record)
        recipe = runs.recipe_of(record)
        epochs = record["history"]["epochs"]
        runtime = record["runtime"]
        if not epochs or epochs[-1].get("val_acc") is None:
            raise runs.RunRecordError("its history has no epoch with a test accuracy")
        imagenette = record["imagenette"]
        return StoredRun(
            chapter=chapter, cell=cell, recipe=recipe, options=dict(record["options"]), params=int(record["params"]),
            train_images=int(record["train_images"]), test_accuracy=float(epochs[-1]["val_acc"]),
            epochs=len(epochs), train_minutes=sum(float(e["seconds"]) for e in epochs) / 60,
            imagenette_accuracy=None if imagenette is None else float(imagenette["val_acc"]),
            profile=runtime["profile"], device=runtime["device"], cpu_capability=runtime["cpu_capability"],
            cpu_count=runtime.get("cpu_count"), bf16=bool(runtime["bf16"]), executed_at=executed_at,
            history=record["history"])
    except (runs.RunRecordError, KeyError, TypeError, ValueError) as error:
        detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
        raise StoredRunError(f"{where}: its run record cannot be read ({detail}); {fix}") from None


def read_chapter(path: Path) -> list[StoredRun]:
    """Every ``train_and_report`` run stored in the executed notebook ``path``, in order.

    A run is one output of MIME type ``book.runs.MIME``. A notebook not executed by
    ``book.notebooks`` (no ``modern_cnns`` metadata), a record that cannot be read, or a
    cell that calls ``train_and_report`` but holds no record, is refused with the fix.
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
    found: list[StoredRun] = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        where = f"{path}, cell {index}"
        records = _records(cell)
        if records and not notebook.metadata.get("modern_cnns"):
            raise StoredRunError(f"{path} has no `modern_cnns` metadata, so it was not executed by book.notebooks "
                                 f"and its numbers cannot be traced to a run; {fix}")
        executed_at = notebook.metadata.get("modern_cnns", {}).get("executed_at", "")
        found += [_stored_run(record, path.stem, index, executed_at, where, fix) for record in records]
        if "train_and_report(" in cell.source and not records:
            raise StoredRunError(f"{where} calls train_and_report but holds no stored run (not executed, or "
                                 f"its output was cleared); {fix}")
    return found


def _executed(path: Path) -> bool:
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception:  # unreadable: read_chapter refuses it with the fix
        return True
    return bool(notebook.metadata.get("modern_cnns")) or any(
        cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def trained_chapters() -> tuple[str, ...]:
    """The chapters that teach a registered architecture, in order: each trains its network once."""
    return tuple(dict.fromkeys(spec.chapter for spec in models.specs()))


def stored_runs(chapters_dir: Path | str | None = None, *, required=None, pending=()) -> StoredRuns:
    """The runs of every ``required`` chapter (default: ``trained_chapters()``) and of
    every ``pending`` chapter that has been executed.

    A required chapter that is missing, not executed, or without any run is an error; a
    pending chapter (one being written) that is missing or not executed yet is listed in
    ``not_run`` instead.
    """
    folder = Path(chapters_dir) if chapters_dir is not None else CHAPTERS_DIR
    required = trained_chapters() if required is None else tuple(required)
    result = StoredRuns()
    for stem in (*required, *pending):
        path = folder / f"{stem}.ipynb"
        if stem in pending and (not path.exists() or not _executed(path)):
            result.not_run.append(stem)
            continue
        found = read_chapter(path)
        if stem in required and not found:
            raise StoredRunError(f"{path} holds no train_and_report run (the chapter should train its network); "
                                 f"{FIX.format(path=path)}")
        result.runs.extend(found)
    return result


# --------------------------------------------------------------------------- the
# trained (small) networks

def trained_model(run: StoredRun) -> nn.Module:
    """The network that ``run`` trained, built again from its recipe and call options
    (untrained)."""
    options = {**dict(run.recipe.options), **run.options}
    if profiles.get_profile(run.profile).small_models:
        return models.build_small(run.model, 10, 1, **options)
    return models.build(run.model, 10, 1, **options)


def trained_costs(run: StoredRun) -> dict:
    """Parameters and multiply-adds of the trained network at its training resolution, measured.

    ``matches`` is False when today's code builds a network with another parameter count
    than the run printed (the chapter ran older code, or options the parser could not
    read): its MACs are then None.
    """
    model = trained_model(run)
    counted = summary.count(model, (1, 1, run.recipe.resolution, run.recipe.resolution))
    matches = counted["params"] == run.params
    return {"params": run.params, "macs": counted["macs"] if matches else None,
            "resolution": run.recipe.resolution, "matches": matches}


# --------------------------------------------------------------------------- every
# architecture at 224 px

@dataclass(frozen=True)
class Architecture:
    label: str
    model: str | None          # name for models.build; None: the book has no model of it
    paper: str                 # key of papers.IMAGENET
    trained: str | None        # the model whose stored Fashion-MNIST run is this architecture's; None: not trained
    chapter: str               # the chapter that teaches it
    note: str = ""             # what stands in the Fashion-MNIST column when there is no run


def all_architectures() -> tuple[Architecture, ...]:
    """Every architecture the specs list for the comparison (``Spec.compared``), in
    chapter order."""
    return tuple(Architecture(c.label, c.model, c.paper, c.model if c.trained else None, spec.chapter, c.note)
                 for spec in models.specs() for c in spec.compared)


def build_all(architectures=None) -> dict[str, nn.Module]:
    """{label: the paper configuration in eval mode} for every architecture that book.models has."""
    chosen = all_architectures() if architectures is None else architectures
    return {a.label: models.build(a.model).eval() for a in chosen if a.model is not None}


def costs(networks: dict[str, nn.Module], image: tuple[int, ...] = IMAGE) -> dict[str, dict[str, int]]:
    """{label: {"params", "macs"}} measured by ``summary.count`` (FlopCounterMode) at ``image``."""
    return {label: summary.count(net, image) for label, net in networks.items()}


def latency(networks: dict[str, nn.Module], *, warmup: int = 2, repeats: int = 5,
            image: tuple[int, ...] = IMAGE) -> dict[str, list[float]]:
    """Seconds of each forward pass of one image, ``repeats`` per network after ``warmup`` passes.

    The networks take turns within each round, so that a slower or busier moment of the
    machine falls on all of them alike instead of on whichever was timed then. Under
    ``torch.inference_mode``.
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
               times: dict[str, list[float]] | None = None, architectures=None,
               reference: str = "AlexNet") -> list[Row]:
    """One ``Row`` per architecture; latency as the median of ``times`` and its ratio to
    ``reference``'s."""
    medians = {label: statistics.median(values) for label, values in (times or {}).items()}
    rows = []
    for arch in (all_architectures() if architectures is None else architectures):
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
         "params M (ours)", "GMACs (ours)", "ms per image", "× AlexNet", "F-MNIST acc. (small config.)", "train min", "run"],
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
    """The stored Fashion-MNIST runs, with the trained network's measured cost and where
    each ran."""
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

    A point is dominated when another costs no more and is no less accurate, and is
    better in one of the two. Lower cost and higher accuracy are better; equal points do
    not dominate each other.
    """
    points = [(float(x), float(y)) for x, y in points]
    front = [p for p in points
             if not any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in points)]
    return sorted(front)


def _label(ax, xy: dict[str, tuple[float, float]], fontsize: int = 8) -> None:
    """Name each point at the first nearby spot where its label overlaps no marker,
    label or legend."""
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
    """Accuracy against multiply-adds and against parameters, one dot per network,
    Pareto front dashed.

    ``points`` maps a label to (multiply-adds, parameters, accuracy). Both x axes are
    logarithmic."""
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
