"""Step-level measurements that some claims need and ``fit`` does not give: they watch
training as it goes.

- ``watch_sigmoid_inputs``: the batch-norm paper's Figure 1, the distribution of the
  inputs to the last hidden layer's sigmoids and the test accuracy, every few steps.
- ``steps_to_accuracy``: the measure of the BN paper's Figure 3 (a table), steps until
  the test accuracy reaches a target.
- ``training_error_curve`` and ``gradient_norms``: the ResNet paper's Figure 6 (training
  error over steps) and the signal that reaches each layer at initialisation.
- ``peak_training_memory`` and ``dense_feature_reuse``: DenseNet's memory, and its
  Figure 5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .train import evaluate, train_step


def _batches(loader):
    """Batches from ``loader`` without end: a new epoch starts where the last one stopped."""
    while True:
        yield from loader


def _sgd_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One step of ``train.train_step`` (fit's own) on a batch; returns the batch's
    logits from before it."""
    return train_step(model, opt, x, y)[1]


@torch.no_grad()
def _sigmoid_inputs(model: nn.Module, probe: torch.Tensor) -> torch.Tensor:
    """The inputs (probe images × units) to the last ``nn.Sigmoid`` of ``model``, in eval mode."""
    last = [m for m in model.modules() if isinstance(m, nn.Sigmoid)][-1]
    captured = []
    hook = last.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0].detach()))
    was_training = model.training
    model.eval()
    try:
        model(probe)
    finally:
        hook.remove()
        model.train(was_training)
    return captured[0].float().flatten(1)


def watch_sigmoid_inputs(model: nn.Module, train_loader, test_loader, probe: torch.Tensor, *, steps: int,
                         lr: float, every: int) -> dict:
    """Train with plain SGD for ``steps`` steps; every ``every`` steps record the test
    accuracy and the 15th, 50th and 85th percentiles of each last-layer sigmoid's input
    over the ``probe`` images (Ioffe & Szegedy 2015, Figure 1). Returns the steps,
    accuracies and percentiles (checkpoints × 3 × units).
    """
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    quantiles = torch.tensor([0.15, 0.50, 0.85])
    record = dict(steps=[], test_acc=[], percentiles=[])
    batches = _batches(train_loader)
    model.train()
    for step in range(steps + 1):
        if step % every == 0:
            record["steps"].append(step)
            record["test_acc"].append(evaluate(model, test_loader)[1])
            record["percentiles"].append(torch.quantile(_sigmoid_inputs(model, probe), quantiles, dim=0))
            model.train()
        if step < steps:
            _sgd_step(model, opt, *next(batches))
    record["percentiles"] = torch.stack(record["percentiles"])
    return record


def drift(percentiles: torch.Tensor, start: int = 1) -> float:
    """How far each unit's median input wanders during training, in units of its final
    15th-85th percentile width: the mean over units and checkpoints (from ``start``) of
    |median(t) - median(end)| / width(end)."""
    median, final = percentiles[start:, 1], percentiles[-1]
    width = (final[2] - final[0]).clamp_min(1e-6)
    return ((median - final[1]).abs() / width).mean().item()


def steps_to_accuracy(model: nn.Module, train_loader, test_loader, target: float, *, lr: float, max_steps: int,
                      every: int, momentum: float = 0.9) -> int | None:
    """SGD steps (constant rate, momentum) until the test accuracy, checked every
    ``every`` steps, reaches ``target``: the measure of the BN paper's Figures 2 and 3.
    None if ``max_steps`` pass first."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    batches = _batches(train_loader)
    model.train()
    for step in range(1, max_steps + 1):
        _sgd_step(model, opt, *next(batches))
        if step % every == 0:
            accuracy = evaluate(model, test_loader)[1]
            model.train()
            if accuracy != accuracy:  # NaN: the rate was too high and training diverged
                return None
            if accuracy >= target:
                return step
    return None


def training_error_curve(model: nn.Module, train_loader, *, steps: int, lr: float, every: int,
                         momentum: float = 0.9, weight_decay: float = 1e-4) -> dict:
    """SGD with momentum at a constant rate for ``steps`` steps; the training error
    averaged over each window of ``every`` batches, as the thin curves of He et al.
    2016, Figure 6 (their weight decay, 1e-4)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    batches = _batches(train_loader)
    model.train()
    record, errors = dict(steps=[], train_error=[]), []
    for step in range(1, steps + 1):
        x, y = next(batches)
        output = _sgd_step(model, opt, x, y)
        errors.append((output.argmax(1) != y).float().mean().item())
        if step % every == 0:
            record["steps"].append(step)
            record["train_error"].append(sum(errors) / len(errors))
            errors = []
    return record


def gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """The norm of the loss gradient with respect to each convolution's weights, for one
    batch, in training mode: how much signal reaches each layer (He et al. 2016, §4.1,
    on vanishing gradients)."""
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return {name: m.weight.grad.norm().item() for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _status_bytes(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS, VmHWM), in bytes."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _training_step_memory(builder: str, options: dict, batch: int, resolution: int) -> int:
    """The growth of this process's peak resident memory over one training step of
    ``builder(**options)``."""
    import gc
    import importlib

    module, _, function = builder.partition(":")
    torch.manual_seed(0)
    model = getattr(importlib.import_module(module), function)(**options).train()
    x, y = torch.randn(batch, 1, resolution, resolution), torch.randint(0, 10, (batch,))
    F.cross_entropy(model(x[:2]), y[:2]).backward()  # warm up the allocator and oneDNN's kernels on a tiny batch
    model.zero_grad(set_to_none=True)
    gc.collect()
    # VmHWM, not getrusage's ru_maxrss: the latter keeps the parent's peak across fork
    # and exec, so a child of a big notebook kernel would report the kernel's size.
    # Writing 5 to clear_refs resets VmHWM to now.
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _status_bytes("VmRSS")
    F.cross_entropy(model(x), y).backward()
    return _status_bytes("VmHWM") - before


def peak_training_memory(builder: str, options: dict, *, batch: int = 256, resolution: int = 28) -> int:
    """Bytes by which a process's peak resident memory grows during one training step
    (forward and backward) of ``builder(**options)`` ("book.models.resnet:cifar_resnet",
    say) on a batch of one-channel images: activations, gradients and workspace.

    Each measurement runs in a fresh Python process, so that nothing the caller holds is
    counted; the CPU has no ``torch.cuda.max_memory_allocated``. Linux only (it reads
    ``/proc``)."""
    import subprocess
    import sys

    arguments = [builder, options, batch, resolution]
    call = f"from book.studies import _training_step_memory as m; print(m(*{arguments!r}))"
    done = subprocess.run([sys.executable, "-c", call], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"measuring the memory of {builder}({options}) failed:\n{done.stderr[-2000:]}")
    return int(done.stdout.split()[-1])


def dense_feature_reuse(model: nn.Module) -> list[torch.Tensor]:
    """Huang et al. 2017, Figure 5: for each dense block, the mean absolute weight by
    which each target (every layer of the block, then the transition or classifier after
    it) reads each source (the block's input, then each layer's k new maps). Entry [s,
    t]; NaN where t cannot see s. A DenseNet-BC layer reads its input through the 1×1
    bottleneck convolution, so that is the weight measured."""
    from .models.densenet import DenseBlock, Transition

    children = list(model.features.children()) + [model.classifier]
    maps = []
    for i, block in enumerate(children):
        if not isinstance(block, DenseBlock):
            continue
        layers = list(block.values())
        growth = layers[0].conv2.out_channels
        inputs = layers[0].conv1.in_channels
        bounds = [0, inputs] + [inputs + growth * (j + 1) for j in range(len(layers))]
        reader = next(m for m in children[i + 1:] if isinstance(m, (Transition, nn.Linear)))
        weights = [layer.conv1.weight.flatten(1) for layer in layers]
        weights.append(reader.conv.weight.flatten(1) if isinstance(reader, Transition) else reader.weight)
        grid = torch.full((len(layers) + 1, len(layers) + 1), float("nan"))
        for target, weight in enumerate(weights):
            for source in range(min(target + 1, len(layers) + 1)):
                grid[source, target] = weight[:, bounds[source]:bounds[source + 1]].abs().mean()
        maps.append(grid.detach())
    return maps
