"""The cpu recipe end to end: the ResNet-18 recipe before the speed work against today's, per seed.

Each recipe trains like ``python -m book train --model resnet18 --profile cpu`` (``book.experiment``):
build, train with an evaluation on the test set after every epoch, and report the final test accuracy.
The clock runs from building the model to the last evaluation; decoding Fashion-MNIST happens once,
before either clock, and Python's start-up is the same for both. The two recipes alternate seed by seed,
so that a slow spell of the machine favours neither. What to read is the ratio of their minutes and the
difference of their accuracies over the seeds (mean ± sd).

    python benchmarks/cpu_recipe.py                        # AVX2 only (the floor), in a child process
    python benchmarks/cpu_recipe.py --isa native --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from cpu_speed import AVX2_ONLY, cpu_model  # noqa: E402

from book.chapter import ClaimResult  # noqa: E402

# The recipe `python -m book train --model resnet18 --profile cpu` ran before: 92.77 ± 0.24% in 5.63 min on
# the AVX2 floor over 3 seeds (results/cpu-recipe-avx2*.json).
PREVIOUS = dict(epochs=4, batch_size=128, lr=0.1, label_smoothing=0.0)


def train_once(settings: dict, seed: int) -> dict:
    """One run of the cpu recipe, with ``settings`` (epochs, batch_size, lr, label_smoothing) overriding it."""
    from book.experiment import prepare, run
    from book.runtime import Runtime

    started = time.perf_counter()
    experiment = prepare("resnet18", Runtime.detect("cpu"), seed=seed, epochs=settings.get("epochs"),
                         batch_size=settings.get("batch_size"))
    overrides = {key: settings[key] for key in ("lr", "label_smoothing") if key in settings}
    history = run(experiment, seed=seed, progress=False, live_plot=False, **overrides)
    minutes = (time.perf_counter() - started) / 60
    rec, meta = experiment.recipe, history.meta
    return dict(seed=seed, minutes=minutes, test_acc=history.final_val_acc, epochs=rec.epochs,
                batch_size=rec.batch_size, lr=meta["lr"],
                label_smoothing=overrides.get("label_smoothing", rec.label_smoothing),
                bf16=meta["bf16"], cpu_capability=meta["cpu_capability"],
                per_epoch_test_acc=history.column("val_acc"))


def measure(isa: str, seeds: list[int]) -> dict:
    import torch

    from book import data
    data.fashion_mnist("train"), data.fashion_mnist("test")  # decoded once, outside both clocks
    runs = {"previous": [], "today": []}
    for seed in seeds:
        for name, settings in (("previous", PREVIOUS), ("today", {})):
            print(f"{isa}: seed {seed}, {name} recipe ...", flush=True)
            runs[name].append(train_once(settings, seed))
            print(f"  {runs[name][-1]['minutes']:.2f} min, test accuracy {runs[name][-1]['test_acc']:.4f}", flush=True)
    # The project's one mean ± sd (sample sd over seeds), as the chapters' claims use it.
    accuracy = ClaimResult("as accurate", "test_acc", {name: [r["test_acc"] for r in rs] for name, rs in runs.items()},
                           better="today", worse="previous", extra=runs)
    minutes = accuracy.on("minutes", "faster", higher_is_better=False)
    summary = {name: dict(minutes=minutes.mean_sd(name), test_acc=accuracy.mean_sd(name)) for name in runs}
    ratios = [p["minutes"] / t["minutes"] for p, t in zip(runs["previous"], runs["today"])]
    return dict(isa=isa, cpu=cpu_model(), threads=torch.get_num_threads(), torch=torch.__version__,
                seeds=seeds, runs=runs, summary=summary, speedup_per_seed=ratios,
                speedup=statistics.mean(ratios),
                accuracy_change_points=100 * (summary["today"]["test_acc"][0] - summary["previous"]["test_acc"][0]))


def print_result(result: dict) -> None:
    print(f"\n{result['isa']} ({result['cpu']}, {result['threads']} threads), seeds {result['seeds']}")
    for name, summary in result["summary"].items():
        (minutes, minutes_sd), (acc, acc_sd) = summary["minutes"], summary["test_acc"]
        print(f"  {name:<9} {minutes:6.2f} ± {minutes_sd:.2f} min   test accuracy {100 * acc:.2f} ± {100 * acc_sd:.2f}%")
    print(f"  today's recipe is {result['speedup']:.2f}× faster end to end, "
          f"{result['accuracy_change_points']:+.2f} points of accuracy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isa", choices=["native", "avx2"], default="avx2")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=None, help="default: results/cpu-recipe-ISA.json")
    args = parser.parse_args()
    out = args.out or HERE / "results" / f"cpu-recipe-{args.isa}.json"
    if args.isa == "avx2" and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        # The caps must be set before torch loads: run again in a child process that has them.
        command = [sys.executable, __file__, "--isa", "avx2", "--out", str(out), "--seeds", *map(str, args.seeds)]
        sys.exit(subprocess.run(command, env={**os.environ, **AVX2_ONLY}).returncode)
    result = measure(args.isa, args.seeds)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print_result(result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
