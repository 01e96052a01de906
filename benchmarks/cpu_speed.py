"""The cpu recipe's training speed: the eager fp32 path against channels_last off, torch.compile and bf16.

Each variant trains the cpu profile's model (default: the small ResNet-18 at 28 px, at its recipe's batch) through
`book.train.fit` on real Fashion-MNIST batches. What to read are the ratios to today's path
(eager, channels_last on), measured in the same run. torch.compile's compile time is counted apart and
also amortised over a whole cpu-profile run. bf16 autocast is measured only where the CPU has native bf16
(avx512_bf16 or AMX), which the JSON records.

    python benchmarks/cpu_speed.py                 # this machine's ISA, then AVX2 only (the floor), in child processes
    python benchmarks/cpu_speed.py --isa native    # one ISA, in this process
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        return next(l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def measure_isa(isa: str, model_name: str, steps: int, warmup: int, rounds: int) -> dict:
    import torch

    from book import data, models
    from book.profiles import recipe
    from book.runtime import native_bf16
    from book.train import fit
    from train_throughput import FirstBatches

    rec = recipe(model_name, "cpu")
    train = data.fashion_mnist("train")
    loader = data.DeviceLoader(train, rec.batch_size, shuffle=True, resolution=rec.resolution, channels_last=True)
    steps_per_run = rec.epochs * len(loader)
    # fp32 is pinned: fit's default is now bf16 wherever the CPU has it, which is what this measured.
    variants = {"eager, channels_last (today)": dict(channels_last=True, bf16=False),
                "eager, contiguous": dict(channels_last=False, bf16=False),
                "torch.compile, channels_last": dict(channels_last=True, compile=True, bf16=False)}
    has_bf16 = native_bf16(torch.device("cpu"))  # honours the AVX2 cap the parent set for this process
    if has_bf16:
        variants["bf16 autocast, channels_last"] = dict(channels_last=True, bf16=True)
    # A constant rate at the one-cycle schedule's start (lr/25): the full rate from step 0 can diverge.
    settings = dict(epochs=1, optimizer=rec.optimizer, lr=rec.lr / 25, weight_decay=rec.weight_decay,
                    progress=False, live_plot=False, schedule="constant")

    models_by_variant, first_seconds = {}, {}
    for name, options in variants.items():
        torch.manual_seed(0)
        model = models.build_small(model_name)
        started = time.perf_counter()
        fit(model, FirstBatches(loader, warmup), **settings, **options)  # compiles, for torch.compile
        first_seconds[name] = time.perf_counter() - started
        models_by_variant[name] = model
    rates = {name: [] for name in variants}
    for _ in range(rounds):  # alternate the variants, so that a slow spell of the machine favours none
        for name, options in variants.items():
            history = fit(models_by_variant[name], FirstBatches(loader, steps), **settings, **options)
            rates[name].append(history.records[0].images_per_s)
    baseline = "eager, channels_last (today)"
    median = {name: sorted(r)[len(r) // 2] for name, r in rates.items()}
    rows = []
    for name in variants:
        step_ratio = median[name] / median[baseline]
        compile_seconds = max(0.0, first_seconds[name] - warmup * rec.batch_size / median[name])
        run_seconds = steps_per_run * rec.batch_size / median[name] + compile_seconds
        baseline_run = steps_per_run * rec.batch_size / median[baseline]
        rows.append(dict(variant=name, images_per_s=median[name], rounds=rates[name], ratio=step_ratio,
                         first_call_seconds=first_seconds[name], compile_seconds=compile_seconds,
                         run_minutes=run_seconds / 60, run_ratio=baseline_run / run_seconds))
    return dict(isa=isa, cpu=cpu_model(), cpu_count=os.cpu_count(), threads=torch.get_num_threads(),
                torch=torch.__version__, native_bf16=has_bf16, model=model_name,
                resolution=rec.resolution, batch_size=rec.batch_size, steps=steps, rounds=rounds,
                steps_per_cpu_run=steps_per_run, variants=rows)


def print_rows(result: dict) -> None:
    print(f"\n{result['isa']} ({result['cpu']}, {result['threads']} threads, native bf16: {result['native_bf16']}): "
          f"{result['model']} {result['resolution']} px, batch {result['batch_size']}")
    print(f"  {'variant':<32}{'img/s':>8}{'step ratio':>12}{'compile s':>11}{'run min':>9}{'run ratio':>11}")
    for row in result["variants"]:
        print(f"  {row['variant']:<32}{row['images_per_s']:>8,.0f}{row['ratio']:>11.2f}x"
              f"{row['compile_seconds']:>11.1f}{row['run_minutes']:>9.2f}{row['run_ratio']:>10.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isa", choices=["native", "avx2", "both"], default="both")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cpu-speed.json")
    args = parser.parse_args()
    common = ["--model", args.model, "--steps", str(args.steps), "--warmup", str(args.warmup),
              "--rounds", str(args.rounds)]
    if args.isa == "both":  # each ISA in a fresh process: the variables must be set before torch loads
        results = []
        for isa in ("native", "avx2"):
            part = args.out.with_name(f"{args.out.stem}-{isa}.json")
            # A cold inductor cache per ISA: compile time is then counted in full, and code compiled for one
            # ISA is never reused under another (that gave NaN losses under the AVX2 cap here).
            cache = tempfile.mkdtemp(prefix=f"inductor-{isa}-")
            env = {**os.environ, **(AVX2_ONLY if isa == "avx2" else {}), "TORCHINDUCTOR_CACHE_DIR": cache}
            try:
                subprocess.run([sys.executable, __file__, "--isa", isa, "--out", str(part), *common], env=env,
                               check=True)
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            results.append(json.loads(part.read_text()))
            part.unlink()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.out}")
        return
    if args.isa == "avx2" and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        sys.exit("--isa avx2 needs the variables set before torch loads; run with --isa both")
    result = measure_isa(args.isa, args.model, args.steps, args.warmup, args.rounds)
    print_rows(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
