"""benchmarks/gpu_check.py and its compact data, run on the CPU so that the real GPU run does not fail on a typo."""

import json
import lzma
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, real_data_dir


def run(*args, env=None):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


@pytest.fixture(scope="module")
def compact(tmp_path_factory):
    """A compact copy of the real data with 3 Imagenette images per class and split (Fashion-MNIST whole)."""
    out = tmp_path_factory.mktemp("compact") / "gpu-data"
    done = run("benchmarks/compact_data.py", "pack", "--mirror", str(real_data_dir()), "--out", str(out),
               "--per-class", "3", "--fast")
    assert done.returncode == 0, done.stderr
    return out


def test_compact_copy_round_trips_the_data(compact, tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import compact_data

    manifest = json.loads((compact / "manifest.json").read_text())
    assert manifest["imagenette"]["splits"] == {"train": 30, "val": 30}
    data_dir, cache = compact_data.unpack(compact, tmp_path / "unpacked")
    raw = cache / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    assert raw.stat().st_size == 16 + 60000 * 28 * 28  # the idx header and every image, unchanged
    assert len(list((data_dir / "imagenette2-128" / "val").rglob("*.webp"))) == 30

    # A damaged copy is refused with the fix named, never unpacked into a half-right cache.
    damaged = shutil.copytree(compact, tmp_path / "damaged")
    (damaged / "FashionMNIST" / "t10k-labels-idx1-ubyte.xz").write_bytes(lzma.compress(b"not the labels"))
    with pytest.raises(ValueError, match="copy .gpu-data again"):
        compact_data.unpack(damaged, tmp_path / "again")
    assert not (tmp_path / "again" / "manifest.json").exists()


def test_dry_run_covers_every_part(compact, tmp_path):
    out = tmp_path / "gpu.json"
    done = run("benchmarks/gpu_check.py", "--dry-run", "--data", str(compact), "--out", str(out),
               "--unpack-into", str(tmp_path / "unpacked"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["dry_run"] and results["environment"]["torch"]
    assert [(row["model"], row["resolution"]) for row in results["pipeline"]] == [("resnet18", 96), ("alexnet", 224)]
    assert all(row["ratio"] > 0 for row in results["pipeline"])
    recipes = {row["model"]: row for row in results["recipes"]}
    assert set(recipes) == {"alexnet", "vgg11", "nin", "googlenet", "resnet18", "densenet121", "vit", "coatnet"}
    assert all("error" not in row and row["images_per_s"] > 0 for row in recipes.values()), recipes
    assert recipes["alexnet"]["resolution"] == 224 and recipes["googlenet"]["resolution"] == 96
    nette = results["imagenette"]
    assert nette["train_images"] == 30 and nette["val_images"] == 30 and nette["epochs"] >= 1
    assert "== gpu check" in done.stdout and "imagenette resnet18" in done.stdout


def test_refuses_to_run_for_real_without_a_gpu():
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = run("benchmarks/gpu_check.py")
    assert done.returncode == 2 and "--dry-run" in done.stderr
