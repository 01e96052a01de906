"""Step-level measurements that some claims need and ``fit`` does not give: they watch training as it goes.

- ``watch_sigmoid_inputs``: the batch-norm paper's Figure 1, the distribution of the inputs to the last
  hidden layer's sigmoids and the test accuracy, every few steps.
- ``steps_to_accuracy``: the BN paper's Table 1 measure, steps until the test accuracy reaches a target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .train import evaluate


def _batches(loader):
    """Batches from ``loader`` without end: a new epoch starts where the last one stopped."""
    while True:
        yield from loader


def _sgd_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


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
    """Train with plain SGD for ``steps`` steps; every ``every`` steps record the test accuracy and the
    15th, 50th and 85th percentiles of each last-layer sigmoid's input over the ``probe`` images
    (Ioffe & Szegedy 2015, Figure 1). Returns the steps, accuracies and percentiles (checkpoints × 3 × units).
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
    """How far each unit's median input wanders during training, in units of its final 15th-85th percentile
    width: the mean over units and checkpoints (from ``start``) of |median(t) - median(end)| / width(end)."""
    median, final = percentiles[start:, 1], percentiles[-1]
    width = (final[2] - final[0]).clamp_min(1e-6)
    return ((median - final[1]).abs() / width).mean().item()


def steps_to_accuracy(model: nn.Module, train_loader, test_loader, target: float, *, lr: float, max_steps: int,
                      every: int, momentum: float = 0.9) -> int | None:
    """SGD steps (constant rate, momentum) until the test accuracy, checked every ``every`` steps, reaches
    ``target``: the measure of the BN paper's Table 1 and Figure 2. None if ``max_steps`` pass first."""
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
