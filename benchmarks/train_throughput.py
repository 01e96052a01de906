"""Training images/s: our device-resident pipeline against a plain torchvision DataLoader, in one run.

The plain pipeline is D2L's: per-sample ``Resize`` + ``ToTensor`` in ``num_workers=4`` worker processes.
Both train the same model (same initial weights, optimiser and batch size) for the same number of
steps after a warm-up; the ratio ours/plain is what to read, not the absolute numbers.

    python benchmarks/train_throughput.py --model resnet18 --resolution 96 --steps 15
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision
from torchvision import transforms

from book import data, models
from book.runtime import default_device


def measure(model: torch.nn.Module, iterator, steps: int, warmup: int, device: torch.device, channels_last: bool) -> float:
    """Images per second over ``steps`` training steps after ``warmup`` steps (data loading included)."""
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    seen = 0
    for step in range(warmup + steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started, seen = time.perf_counter(), 0
        x, y = next(iterator)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - started)


def plain_loader(resolution: int, batch_size: int, workers: int, device: torch.device):
    """D2L's Fashion-MNIST pipeline: PIL images, per-sample ``Resize`` + ``ToTensor``, worker processes."""
    plain_set = torchvision.datasets.FashionMNIST(
        str(data._fashion_mnist_root()), train=True,
        transform=transforms.Compose([transforms.Resize(resolution), transforms.ToTensor()]))
    return torch.utils.data.DataLoader(plain_set, batch_size, shuffle=True, num_workers=workers,
                                       pin_memory=device.type == "cuda", persistent_workers=workers > 0)


def endless(loader):
    while True:
        yield from loader


class FirstBatches:
    """The first ``count`` batches of an endless pass over ``loader``: `fit` sees a short epoch."""

    def __init__(self, loader, count: int):
        self.loader, self.count, self.device = loader, count, loader.device

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        return itertools.islice(endless(self.loader), self.count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18", choices=models.names())
    parser.add_argument("--resolution", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="alternate the two pipelines this many times; report medians")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers of the plain pipeline (D2L: 4)")
    parser.add_argument("--full-size", action="store_true", help="the paper's model instead of the small one")
    parser.add_argument("--out", help="write the figures as JSON")
    args = parser.parse_args()

    device = default_device()
    torch.manual_seed(0)
    model = models.build(args.model, 10, 1) if args.full_size else models.build_small(args.model)
    channels_last = True

    train = data.fashion_mnist("train")
    ours = data.DeviceLoader(train, args.batch_size, shuffle=True, resolution=args.resolution, device=device,
                             channels_last=channels_last)
    plain = plain_loader(args.resolution, args.batch_size, args.workers, device)

    # Alternate the pipelines so that a slow spell of the machine does not favour either one.
    plain_rates, ours_rates = [], []
    plain_batches, our_batches = endless(plain), endless(ours)
    for _ in range(args.rounds):
        plain_rates.append(measure(copy.deepcopy(model), plain_batches, args.steps, args.warmup, device, channels_last))
        ours_rates.append(measure(copy.deepcopy(model), our_batches, args.steps, args.warmup, device, channels_last))
    plain_rate, ours_rate = statistics.median(plain_rates), statistics.median(ours_rates)
    ratio = ours_rate / plain_rate
    print(f"device {device}, model {args.model} ({'paper' if args.full_size else 'small'}), {args.resolution} px, "
          f"batch {args.batch_size}, {args.steps} steps after {args.warmup} warm-up steps")
    print(f"  rounds: plain {[round(r) for r in plain_rates]}, ours {[round(r) for r in ours_rates]} images/s")
    print(f"  plain DataLoader (Resize+ToTensor, {args.workers} workers): {plain_rate:8.0f} images/s")
    print(f"  book.data.DeviceLoader (on-device, batched):        {ours_rate:8.0f} images/s")
    print(f"  ratio ours/plain: {ratio:.2f}x")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": str(device), "model": args.model, "resolution": args.resolution,
                       "plain_images_per_s": plain_rate, "ours_images_per_s": ours_rate, "ratio": ratio}, f, indent=2)


if __name__ == "__main__":
    main()
