"""One `fit` for every chapter: device, mixed precision, schedules, checkpoints,
progress and live plots."""

from __future__ import annotations

import json
import math
import random
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed
from .runtime import default_bf16, default_device, stored_run


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's generators, so that a model built next starts from the
    same weights."""
    random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    images_per_s: float
    seconds: float
    lr: float


@dataclass
class History:
    """Per-epoch training and validation figures, plus what produced them (``meta``)."""

    records: list[EpochRecord] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def column(self, name: str) -> list:
        return [getattr(r, name) for r in self.records]

    @property
    def final_val_acc(self) -> float | None:
        return self.records[-1].val_acc if self.records else None

    @property
    def train_seconds(self) -> float:
        return sum(r.seconds for r in self.records)

    def to_dict(self) -> dict:
        return {"meta": self.meta, "epochs": [asdict(r) for r in self.records]}

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        return cls([EpochRecord(**r) for r in data["epochs"]], dict(data.get("meta", {})))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "History":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def plot(self, fig=None):
        from .viz import plot_history
        return plot_history(self, fig=fig)

    def __repr__(self) -> str:
        last = self.records[-1] if self.records else None
        tail = f", last val_acc={last.val_acc:.4f}" if last and last.val_acc is not None else ""
        return f"History({len(self.records)} epochs{tail})"


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite. ``history`` holds the epochs finished before it."""

    def __init__(self, message: str, history: History):
        super().__init__(message)
        self.history = history


def _loss_and_logits(model: nn.Module, x: torch.Tensor, y: torch.Tensor, label_smoothing: float,
                     aux_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    output = model(x)
    if isinstance(output, (tuple, list)):  # GoogLeNet's auxiliary classifiers (Szegedy et al. 2015 §5)
        logits, *side = output
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        loss = loss + aux_weight * sum(F.cross_entropy(s, y, label_smoothing=label_smoothing) for s in side)
        return loss, logits
    return F.cross_entropy(output, y, label_smoothing=label_smoothing), output


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, *, bf16: bool = False) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` over ``loader``, in eval mode.

    Under torchrun every process must call it (it sums the processes' shares): never on
    rank 0 alone."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = torch.zeros((), device=device, dtype=torch.long)
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
    model.train(was_training)
    loss_sum, correct, seen = distributed.all_sum(loss_sum, correct, seen)  # each process saw its share
    return loss_sum.item() / max(seen.item(), 1), correct.item() / max(seen.item(), 1)


def predict(model: nn.Module, loader: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted class, true class) for every example of ``loader``, on the CPU."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    predicted, actual = [], []
    with torch.no_grad():
        for x, y in loader:
            predicted.append(model(x.to(device)).argmax(1).cpu())
            actual.append(y.cpu())
    model.train(was_training)
    return torch.cat(predicted), torch.cat(actual)


def _make_optimizer(model: nn.Module, name: str, lr: float, momentum: float, weight_decay: float):
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=False)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', not {name!r}")


def _make_schedule(optimizer, name: str | None, lr: float, total_steps: int):
    if name == "onecycle" and total_steps >= 4:
        # The warm-up phase needs at least two steps, or OneCycleLR divides by zero on tiny runs.
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps,
                                                   pct_start=max(0.25, 2 / total_steps))
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if name in (None, "constant", "onecycle"):  # a run of under four steps has no room for a cycle
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise ValueError(f"schedule must be 'onecycle', 'cosine' or 'constant', not {name!r}")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
        shell = get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except ImportError:
        return False


class _LivePlot:
    """A loss/accuracy figure redrawn in place after every epoch (notebooks only). With
    ``static=True`` (stored runs) nothing is shown until :meth:`close`, which shows the
    finished figure once."""

    def __init__(self, static: bool = False):
        import matplotlib.pyplot as plt
        from IPython.display import display
        self.plt, self.display, self.static, self.history = plt, display, static, None
        self.fig = None if static else plt.figure(figsize=(6.8, 2.6))
        self.handle = None if static else display(self.fig, display_id=True)

    def update(self, history: History) -> None:
        self.history = history
        if not self.static:
            history.plot(fig=self.fig)
            self.handle.update(self.fig)

    def close(self) -> None:
        if self.static and self.history is not None and self.history.records:
            self.fig = self.history.plot()
            self.display(self.fig)
        if self.fig is not None:
            self.plt.close(self.fig)  # the display already holds the final picture; avoid a second copy


def _bar_interval() -> float:
    """Redraw often on a terminal or in a notebook; rarely when stderr is a log file."""
    return 0.1 if _in_notebook() or sys.stderr.isatty() else 10.0


def _save_checkpoint(path: Path, **state) -> None:
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    partial.replace(path)  # atomic: an interrupted save never replaces a good checkpoint


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
               bf16: bool = False, label_smoothing: float = 0.0, aux_weight: float = 0.3,
               clip_grad_norm: float | None = None, schedule=None,
               world: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on the cross-entropy of a batch; returns (loss, logits), both
    from before the step.

    The one step of ``fit``, of the studies (``book.studies``) and of
    ``steps_to_reach``, so that a claim measured step by step trains exactly as the
    chapter's network does."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        loss, logits = _loss_and_logits(model, x, y, label_smoothing, aux_weight)
    opt.zero_grad(set_to_none=True)
    if world > 1:  # DDP averages the processes' gradients: weight each by its share of the batch
        share = torch.tensor(float(len(y)), device=x.device)
        (loss * (share * world / distributed.all_sum(share)[0].to(loss.dtype))).backward()
    else:
        loss.backward()
    if clip_grad_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    opt.step()
    if schedule is not None:
        schedule.step()
    return loss, logits


@dataclass
class _Training:
    """What one call of ``fit`` sets up once and every epoch uses."""

    model: nn.Module        # the network itself (its state dict is what a checkpoint keeps)
    step_model: nn.Module   # what the steps call: the model, or its DDP / compiled wrapper
    opt: torch.optim.Optimizer
    sched: object
    device: torch.device
    bf16: bool
    world: int
    main: bool
    steps_per_epoch: int


def _setup(model: nn.Module, train_loader, *, epochs: int, optimizer: str, lr: float, momentum: float,
           weight_decay: float, schedule: str | None, seed: int, device, bf16: bool | None,
           channels_last: bool | None, compile: bool) -> _Training:
    """Device, precision, memory format, DDP, optimiser and schedule: everything before
    the first step."""
    device = torch.device(device or getattr(train_loader, "device", None) or default_device())
    bf16 = default_bf16(device) if bf16 is None else bf16
    channels_last = True if channels_last is None else channels_last  # faster convolutions on CUDA and oneDNN alike
    distributed.setup(device)
    world = distributed.world_size()
    batch = getattr(train_loader, "batch_size", None)
    if world > 1 and batch is not None and batch < world:
        raise ValueError(f"the global batch ({batch}) is smaller than the number of processes ({world}): "
                         f"some would get no images; use --batch-size {world} or more")
    torch.manual_seed(seed + distributed.rank())  # dropout masks differ between processes, as their data does
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    step_model = model
    if world > 1:
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        step_model = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    step_model = torch.compile(step_model) if compile else step_model
    opt = _make_optimizer(model, optimizer, lr, momentum, weight_decay)
    steps_per_epoch = len(train_loader)
    sched = _make_schedule(opt, schedule, lr, epochs * steps_per_epoch)
    return _Training(model, step_model, opt, sched, device, bf16, world, distributed.is_main(), steps_per_epoch)


def _resume(training: _Training, checkpoint: Path, train_loader) -> tuple[History, int]:
    """Restore model, optimiser, schedule, data order and random state; returns the
    history and next epoch."""
    # On the CPU: RNG and generator states must be CPU byte tensors; the states below
    # move themselves.
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    training.model.load_state_dict(state["model"])
    training.opt.load_state_dict(state["optimizer"])
    training.sched.load_state_dict(state["schedule"])
    world = training.world
    saved_world = len(state.get("loader_per_rank") or [None])
    if saved_world != world:
        warnings.warn(f"resuming on {world} process(es) from a checkpoint of {saved_world}: every process "
                      "continues from rank 0's data order and random state, so the run is not exact")
    mine = distributed.rank() if saved_world == world else 0

    def own(name: str):  # this process's saved state: its rank's, or the one state of an older checkpoint
        states = state.get(f"{name}_per_rank") or [state.get(name)]
        return states[min(mine, len(states) - 1)]

    if hasattr(train_loader, "load_state_dict"):
        train_loader.load_state_dict(own("loader"))
    torch.set_rng_state(own("rng_cpu"))
    if training.device.type == "cuda" and own("rng_cuda") is not None:
        torch.cuda.set_rng_state(own("rng_cuda"), training.device)
    return History.from_dict(state["history"]), state["epoch"]


def _train_epoch(training: _Training, train_loader, epoch: int, epochs: int, bar, *, label_smoothing: float,
                 aux_weight: float, clip_grad_norm: float | None, checkpoint: Path | None,
                 history: History) -> tuple[float, float, int]:
    """One pass over ``train_loader``; returns the mean training loss, accuracy and
    images over every process."""
    training.model.train()
    device, world = training.device, training.world
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0  # in this process; the record sums every process's figures
    for step, (x, y) in enumerate(bar):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss, logits = train_step(training.step_model, training.opt, x, y, bf16=training.bf16,
                                  label_smoothing=label_smoothing, aux_weight=aux_weight,
                                  clip_grad_norm=clip_grad_norm, schedule=training.sched, world=world)
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
        # Reading the loss forces a device sync, so look only every 20 steps and at the end.
        if step % 20 == 19 or step == training.steps_per_epoch - 1:
            mean_loss = loss_sum.item() / seen
            finite = torch.tensor(float(math.isfinite(mean_loss)), device=device)
            if distributed.all_sum(finite)[0].item() < world:  # every process stops together
                raise NonFiniteLossError(_nan_message(epoch, step, training.opt, checkpoint, training.bf16), history)
            bar.set_postfix(loss=f"{mean_loss:.3f}", acc=f"{correct.item() / seen:.3f}", refresh=False)
    bar.close()
    loss_sum, correct, seen = (t.item() for t in distributed.all_sum(loss_sum, correct,
                                                                     torch.tensor(seen, device=device)))
    return loss_sum / seen, correct / seen, seen


def _save(training: _Training, checkpoint: Path, train_loader, epoch: int, history: History) -> None:
    """Every process's data order and random state, and (rank 0) the model, optimiser
    and schedule."""
    device = training.device
    loaders = distributed.gather(train_loader.state_dict() if hasattr(train_loader, "state_dict") else None)
    rngs = distributed.gather(torch.get_rng_state())
    cuda_rngs = distributed.gather(torch.cuda.get_rng_state(device) if device.type == "cuda" else None)
    if training.main:
        _save_checkpoint(checkpoint, model=training.model.state_dict(), optimizer=training.opt.state_dict(),
                         schedule=training.sched.state_dict(), epoch=epoch, history=history.to_dict(),
                         loader=loaders[0], rng_cpu=rngs[0], rng_cuda=cuda_rngs[0],
                         loader_per_rank=loaders, rng_cpu_per_rank=rngs, rng_cuda_per_rank=cuda_rngs)
    distributed.barrier()  # nobody runs ahead of a checkpoint it may have to resume from


def fit(model: nn.Module, train_loader, val_loader=None, *, epochs: int, optimizer: str = "sgd", lr: float = 0.05,
        momentum: float = 0.9, weight_decay: float = 5e-4, schedule: str | None = "onecycle",
        label_smoothing: float = 0.0, clip_grad_norm: float | None = None, aux_weight: float = 0.3,
        seed: int = 0, device: torch.device | str | None = None, bf16: bool | None = None,
        channels_last: bool | None = None, compile: bool = False, checkpoint: str | Path | None = None,
        resume: bool = False, progress: bool = True, live_plot: bool | None = None, stored: bool | None = None,
        callbacks: Iterable[Callable[[EpochRecord], None]] = (), meta: dict | None = None) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader`` and return its :class:`History`.

    - The device is the loader's (or :func:`default_device`); bf16 autocast is on by
      default where it is the fast path (:func:`native_bf16`: CUDA, or a CPU with bf16
      instructions; ``BOOK_BF16`` overrides); channels_last memory format is on by
      default (measured faster for convolutions on this 2-core CPU too). A chapter
      passes its ``Runtime``'s device, bf16 and ``stored`` (``experiment.run`` does).
    - ``checkpoint`` is written after every epoch; ``resume=True`` continues from it and
      ends with the same weights as an uninterrupted run (model, optimizer, schedule,
      shuffling and RNG are all restored).
    - A NaN or infinite loss raises :class:`NonFiniteLossError` with a hint at the
      cause.
    - Under torchrun (``book.distributed``) the model trains with DDP, the loader's
      batch is the global batch, and only rank 0 shows progress and writes the
      checkpoint. On GPUs BatchNorm becomes SyncBatchNorm; on the CPU (gloo) each
      process normalises its own share of the batch.
    """
    stored = stored_run() if stored is None else stored
    if stored:  # no widget bars in stored outputs: the per-epoch lines below are the progress
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm

    training = _setup(model, train_loader, epochs=epochs, optimizer=optimizer, lr=lr, momentum=momentum,
                      weight_decay=weight_decay, schedule=schedule, seed=seed, device=device, bf16=bf16,
                      channels_last=channels_last, compile=compile)
    progress = progress and training.main
    live_plot = (_in_notebook() if live_plot is None else live_plot) and training.main
    batch = getattr(train_loader, "batch_size", None)
    history = History(meta={"model": type(model).__name__, "device": str(training.device), "epochs": epochs,
                            "lr": lr, "optimizer": optimizer, "schedule": schedule, "bf16": training.bf16,
                            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "processes": training.world,
                            "global_batch": batch, "batch_per_process": batch // training.world if batch else None,
                            **(meta or {})})
    start_epoch = 0
    checkpoint = Path(checkpoint) if checkpoint else None
    if resume and checkpoint and checkpoint.exists():
        history, start_epoch = _resume(training, checkpoint, train_loader)

    plot = _LivePlot(static=stored) if live_plot else None
    try:
        for epoch in range(start_epoch, epochs):
            started = time.perf_counter()
            bar = tqdm(train_loader, total=training.steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}",
                       disable=not progress or stored, leave=False, unit="batch", mininterval=_bar_interval())
            train_loss, train_acc, seen = _train_epoch(
                training, train_loader, epoch, epochs, bar, label_smoothing=label_smoothing, aux_weight=aux_weight,
                clip_grad_norm=clip_grad_norm, checkpoint=checkpoint, history=history)
            train_seconds = time.perf_counter() - started
            val_loss, val_acc = evaluate(training.model, val_loader, bf16=training.bf16) \
                if val_loader is not None else (None, None)
            record = EpochRecord(epoch + 1, train_loss, train_acc, val_loss, val_acc, seen / train_seconds,
                                 time.perf_counter() - started, training.opt.param_groups[0]["lr"])
            history.records.append(record)
            if progress:
                val = f", {(held := history.meta.get('held_out', 'test'))} loss {val_loss:.3f}, {held} acc {val_acc:.3f}" if val_acc is not None else ""
                tqdm.write(f"epoch {record.epoch}/{epochs}: train loss {record.train_loss:.3f}, "
                           f"train acc {record.train_acc:.3f}{val}, {record.images_per_s:,.0f} img/s, "
                           f"{record.seconds:.1f} s")
            if checkpoint:
                _save(training, checkpoint, train_loader, epoch + 1, history)
            if plot:
                plot.update(history)
            for callback in callbacks:
                callback(record)
    finally:
        if plot:
            plot.close()
    return history


def _nan_message(epoch: int, step: int, opt, checkpoint: Path | None, bf16: bool) -> str:
    lr = opt.param_groups[0]["lr"]
    hints = [f"the learning rate ({lr:.3g}) may be too high: try a tenth of it",
             "or clip gradients with fit(..., clip_grad_norm=1.0)",
             "check that inputs are normalised (a DeviceLoader does it) and labels are in range"]
    if bf16:
        hints.append("bf16 autocast can overflow in custom layers: try bf16=False")
    saved = f" The last finished epoch is saved in {checkpoint}; resume with resume=True." if checkpoint else ""
    return (f"The training loss became NaN or infinite in epoch {epoch + 1}, by step {step + 1}. "
            f"Likely causes: {'; '.join(hints)}.{saved}")


def steps_to_reach(model: nn.Module, loader, train_error: float, *, max_steps: int, lr: float = 0.01,
                   momentum: float = 0.9, window: int = 20, seed: int = 0) -> int | None:
    """Training steps until the error over the last ``window`` batches drops to ``train_error``.

    This is the measure of Krizhevsky et al. 2012, Figure 1 (steps to 25% training
    error); None if ``max_steps`` pass first. Plain SGD with momentum at a constant
    rate, so that only the model differs.
    """
    torch.manual_seed(seed)
    device = getattr(loader, "device", None) or default_device()
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    recent: list[float] = []
    step = 0
    while step < max_steps:
        for x, y in loader:
            _, output = train_step(model, opt, x, y)
            step += 1
            recent = (recent + [(output.argmax(1) != y).float().mean().item()])[-window:]
            if len(recent) == window and sum(recent) / window <= train_error:
                return step
            if step >= max_steps:
                break
    return None
