"""Several processes under ``torchrun``, chosen by the environment it sets, never by chapter code.

``torchrun --nproc_per_node=N -m book train ...`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``.
`fit` then calls :func:`setup`: gloo on the CPU, NCCL on GPUs (one per process). Each
``DeviceLoader`` takes its rank's share of every global batch, PyTorch's DDP averages the gradients,
and only rank 0 prints, plots and writes. Without those variables all of this is a no-op.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched() -> bool:
    """True in a process that torchrun started with more than one process in all."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank: from the process group, or from torchrun's variables before
    it is joined."""
    return dist.get_rank() if active() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if active() else int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return rank() == 0


def local_device() -> torch.device | None:
    """This process's GPU under torchrun (``cuda:LOCAL_RANK``), or None."""
    if launched() and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return None


def setup(device: torch.device) -> bool:
    """Join the process group once (gloo for CPU tensors, NCCL for CUDA); False when not
    launched."""
    if not launched():
        return False
    if not active():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def all_sum(*values: torch.Tensor) -> list[torch.Tensor]:
    """Each tensor summed over every process (unchanged in a single process)."""
    if not active():
        return list(values)
    stacked = torch.stack([v.detach().double() for v in values])
    dist.all_reduce(stacked)
    return list(stacked.unbind())


def gather(value):
    """Every process's ``value`` (any picklable object), in rank order."""
    if not active():
        return [value]
    found = [None] * world_size()
    dist.all_gather_object(found, value)
    return found


def barrier() -> None:
    if active():
        dist.barrier()


def cleanup() -> None:
    if active():
        dist.destroy_process_group()
