"""Time to accuracy: D2L's ResNet-18 recipe against our cpu recipe, one after the other on this machine.

D2L's recipe (Dive into Deep Learning, §8.6 "Residual Networks", PyTorch tab), re-implemented:
- ResNet-18: a 7×7 stride-2 convolution with BN and ReLU, a 3×3 stride-2 max-pool, then residual stages
  ((2, 64), (2, 128), (2, 256), (2, 512)); a residual block is conv3×3-BN-ReLU-conv3×3-BN plus the input,
  through a 1×1 convolution (no BN) where the shape changes; global average pooling and a linear layer.
  Convolutions keep their biases, and weights start from Xavier-uniform (``d2l.init_cnn``).
- Data: Fashion-MNIST resized to 96×96 per sample with ``Resize`` + ``ToTensor`` in a DataLoader with
  4 workers, batch 128, shuffled.
- Optimiser: plain SGD at lr 0.01 (``d2l.Classifier``), cross-entropy, 10 epochs.

Ours: ``python -m book train --model resnet18 --profile cpu`` (``book.experiment``), run to its end.

Both train under the same wall-clock budget (``--budget`` minutes, default 5); evaluation time is not
counted. D2L's model is evaluated on the whole test set when its budget ends. Ours is evaluated after every
epoch, which gives its accuracy within the budget and the minutes to reach 91%.

    python benchmarks/time_to_accuracy.py --budget 5      (make bench)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from cpu_speed import cpu_model  # noqa: E402
from train_throughput import plain_loader  # noqa: E402

from book import data  # noqa: E402
from book.experiment import prepare, run  # noqa: E402
from book.runtime import Runtime  # noqa: E402

TARGET = 0.91


class D2LResidual(nn.Module):
    """D2L's residual block: the 1×1 shortcut convolution has no BatchNorm; every convolution has a bias."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv3 = nn.Conv2d(in_channels, channels, 1, stride=stride) if stride != 1 or in_channels != channels else None
        self.bn1, self.bn2 = nn.BatchNorm2d(channels), nn.BatchNorm2d(channels)

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (self.conv3(x) if self.conv3 is not None else x))


def d2l_resnet18(num_classes: int = 10) -> nn.Sequential:
    layers = [nn.Conv2d(1, 64, 7, stride=2, padding=3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    channels = 64
    for stage, width in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if block == 0 and stage > 0 else 1
            layers.append(D2LResidual(channels, width, stride))
            channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    net = nn.Sequential(*layers)
    for module in net.modules():  # d2l.init_cnn
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
    return net


@torch.no_grad()
def plain_accuracy(model: nn.Module, loader) -> float:
    model.eval()
    correct = seen = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
        seen += len(y)
    model.train()
    return correct / seen


def run_d2l(budget_s: float, resolution: int = 96, batch: int = 128, lr: float = 0.01) -> dict:
    torch.manual_seed(0)
    model = d2l_resnet18()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    device = torch.device("cpu")
    train = plain_loader(resolution, batch, 4, device)
    test_set = torch.utils.data.DataLoader(
        type(train.dataset)(train.dataset.root, train=False, transform=train.dataset.transform), batch, num_workers=4)
    trained_s, seen, steps = 0.0, 0, 0
    progress_at = 30.0
    while trained_s < budget_s:
        started = time.perf_counter()
        for x, y in train:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(y)
            steps += 1
            now = time.perf_counter()
            if trained_s + now - started >= progress_at:
                print(f"  d2l: {seen:,} images in {trained_s + now - started:.0f} s, loss {loss.item():.3f}", flush=True)
                progress_at += 30
            if trained_s + now - started >= budget_s:
                break
        trained_s += time.perf_counter() - started
    started = time.perf_counter()
    accuracy = plain_accuracy(model, test_set)
    return dict(recipe="d2l", resolution=resolution, batch_size=batch, lr=lr, optimizer="sgd (no momentum)",
                steps=steps, images=seen, epochs=seen / len(train.dataset), train_minutes=trained_s / 60,
                images_per_s=seen / trained_s, test_acc_at_budget=accuracy,
                eval_minutes=(time.perf_counter() - started) / 60,
                full_recipe_hours=10 * len(train.dataset) / (seen / trained_s) / 3600)


def run_ours(budget_s: float) -> dict:
    experiment = prepare("resnet18", Runtime.detect("cpu"))
    started = time.perf_counter()
    history = run(experiment)
    wall = time.perf_counter() - started
    elapsed, reached, within = 0.0, None, None
    points = []
    for record in history.records:
        elapsed += record.seconds  # training and this epoch's evaluation
        points.append(dict(epoch=record.epoch, minutes=elapsed / 60, test_acc=record.val_acc))
        if elapsed <= budget_s:
            within = record.val_acc
        if reached is None and record.val_acc >= TARGET:
            reached = elapsed / 60
    rec = experiment.recipe
    return dict(recipe="ours (cpu profile)", resolution=rec.resolution, batch_size=rec.batch_size, lr=rec.lr,
                optimizer=f"{rec.optimizer}, momentum 0.9, one-cycle", bf16=history.meta.get("bf16"),
                epochs=rec.epochs, train_minutes=wall / 60, final_test_acc=history.final_val_acc,
                test_acc_at_budget=within, minutes_to_target=reached, per_epoch=points,
                images_per_s=sum(r.images_per_s for r in history.records) / len(history.records))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=5.0, help="minutes of training per recipe")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "time-to-accuracy.json")
    args = parser.parse_args()
    budget_s = args.budget * 60
    data.fashion_mnist("train"), data.fashion_mnist("test")  # decode once, outside both clocks
    print(f"budget {args.budget:g} min per recipe on {cpu_model()} ({torch.get_num_threads()} threads)", flush=True)
    print("D2L's recipe ...", flush=True)
    d2l = run_d2l(budget_s)
    print("our cpu recipe ...", flush=True)
    ours = run_ours(budget_s)
    result = dict(budget_minutes=args.budget, target=TARGET, cpu=cpu_model(), threads=torch.get_num_threads(),
                  avx512=torch.backends.cpu.get_cpu_capability().startswith("AVX512"), torch=torch.__version__, recipes=[d2l, ours])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))

    within = lambda r: f"{r['test_acc_at_budget']:.4f}" if r["test_acc_at_budget"] is not None else "none yet"  # noqa: E731
    print(f"\n{'recipe':<24}{'img/s':>9}{'test acc in ' + format(args.budget, 'g') + ' min':>20}   to 91%")
    reached = "reached" if d2l["test_acc_at_budget"] >= TARGET else "not reached"
    print(f"{'D2L (96 px, SGD 0.01)':<24}{d2l['images_per_s']:>9,.1f}{within(d2l):>20}   {reached} in the budget "
          f"({d2l['epochs']:.2f} epochs; its 10 epochs would take {d2l['full_recipe_hours']:.1f} h)")
    to_target = f"{ours['minutes_to_target']:.2f} min" if ours["minutes_to_target"] else "not reached"
    print(f"{'ours (cpu profile)':<24}{ours['images_per_s']:>9,.1f}{within(ours):>20}   {to_target}")
    print(f"ours finished its {ours['epochs']} epochs in {ours['train_minutes']:.2f} min at "
          f"{ours['final_test_acc']:.4f}; wrote {args.out}")


if __name__ == "__main__":
    main()
