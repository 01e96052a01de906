"""``python -m book train --model NAME --data fashion-mnist --profile cpu --epochs N
--out run.json``.

Under ``torchrun --nproc_per_node=N -m book train ...`` the same command trains with DDP
(``book.distributed``): ``--batch-size`` is the global batch, and only rank 0 prints and writes."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import data, distributed, models
from .profiles import PROFILES
from .runtime import Runtime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book", description="Modern CNNs: train a model of the book.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a model and write its History as JSON")
    train.add_argument("--model", required=True, choices=models.names(), metavar="NAME",
                       help="one of: " + ", ".join(models.names()))
    train.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "imagenette"])
    train.add_argument("--profile", choices=list(PROFILES), help="default: BOOK_PROFILE, else from the device")
    train.add_argument("--epochs", type=int, help="default: the profile's recipe")
    train.add_argument("--lr", type=float, help="default: the profile's recipe")
    train.add_argument("--batch-size", type=int, help="the global batch (default: the profile's recipe)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint", type=Path, help="save after every epoch; with --resume, continue from it")
    train.add_argument("--resume", action="store_true")
    train.add_argument("--out", type=Path, help="write the History here as JSON, and its plot beside it as PNG")
    args = parser.parse_args(argv)

    from .experiment import prepare, run
    from .runtime import default_device
    device = default_device()
    distributed.setup(device)  # a no-op unless torchrun started several processes
    try:
        return _train(args, prepare, run, device)
    finally:
        distributed.cleanup()


def _train(args, prepare, run, device) -> int:
    say = print if distributed.is_main() else (lambda *a, **k: None)
    try:
        runtime = Runtime.detect(args.profile, device)  # decided once, then passed on
        experiment = prepare(args.model, runtime, dataset=args.data, seed=args.seed, epochs=args.epochs,
                             batch_size=args.batch_size, lr=args.lr)
    except data.DataNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rec = experiment.recipe
    world = distributed.world_size()
    processes = f", {world} processes of {rec.batch_size // world}" if world > 1 else ""
    say(f"{args.model} on {args.data} ({experiment.train.dataset_size:,} train / {experiment.test.dataset_size:,} "
        f"test images at {rec.resolution} px), profile {experiment.profile}, {rec.epochs} epochs, "
        f"batch {rec.batch_size}{processes}, device {experiment.train.device}", flush=True)
    started = time.perf_counter()
    history = run(experiment, seed=args.seed, checkpoint=args.checkpoint, resume=args.resume)
    minutes = (time.perf_counter() - started) / 60
    history.meta["minutes"] = round(minutes, 3)
    say(f"test accuracy {history.final_val_acc:.4f} after {len(history.records)} epochs, {minutes:.2f} min")
    if args.out and distributed.is_main():
        args.out.parent.mkdir(parents=True, exist_ok=True)
        history.save(args.out)
        history.plot().savefig(args.out.with_suffix(".png"), dpi=100)
        say(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0
