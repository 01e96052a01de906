"""book.train: overfitting, resuming, NaN handling and the command line, on real Fashion-MNIST."""

import json
import subprocess
import sys

import pytest
import torch

from book import data, models
from book.runtime import Runtime
from book.train import NonFiniteLossError, fit, seed_everything
from conftest import REPO


def small_loader(per_class=20, batch_size=50, seed=0, resolution=None):
    return data.DeviceLoader(data.fashion_mnist("train").per_class(per_class), batch_size, shuffle=True, seed=seed,
                             resolution=resolution)


def test_model_overfits_one_small_batch():
    batch = data.fashion_mnist("train").per_class(4)  # 40 real images
    loader = data.DeviceLoader(batch, 40, shuffle=True)
    seed_everything(0)
    model = models.build_small("resnet18")
    history = fit(model, loader, loader, epochs=60, optimizer="adamw", lr=3e-3, weight_decay=0.0,
                  schedule="constant", progress=False)
    assert history.records[-1].train_loss < 0.05
    assert history.final_val_acc == 1.0


def _train(tmp_path, name, interrupt_after=None, resume=False):
    seed_everything(0)
    model = models.build_small("lenet_bn")
    loader = small_loader(seed=5)

    def interrupt(record):
        if interrupt_after and record.epoch == interrupt_after:
            raise KeyboardInterrupt

    try:
        fit(model, loader, epochs=3, lr=0.1, checkpoint=tmp_path / name, resume=resume, progress=False,
            callbacks=[interrupt])
    except KeyboardInterrupt:
        return None
    return model


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    uninterrupted = _train(tmp_path, "a.pt")
    assert _train(tmp_path, "b.pt", interrupt_after=1) is None
    resumed = _train(tmp_path, "b.pt", resume=True)
    for (name, a), b in zip(uninterrupted.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    history = torch.load(tmp_path / "b.pt", weights_only=False)["history"]
    assert [r["epoch"] for r in history["epochs"]] == [1, 2, 3]


def test_nan_loss_stops_with_a_hint(tmp_path):
    seed_everything(0)
    model = models.build_small("lenet", activation="relu")
    with pytest.raises(NonFiniteLossError) as error:
        fit(model, small_loader(), epochs=2, lr=1e4, schedule="constant", checkpoint=tmp_path / "c.pt",
            progress=False)
    assert "learning rate" in str(error.value) and "clip_grad_norm" in str(error.value)


def test_history_reports_speed_and_time():
    seed_everything(0)
    history = fit(models.build_small("lenet_bn"), small_loader(), small_loader(seed=1), epochs=2, progress=False)
    record = history.records[-1]
    assert record.images_per_s > 0 and record.seconds > 0 and 0 <= record.val_acc <= 1
    assert history.to_dict()["epochs"][0]["epoch"] == 1


def test_command_line_smoke_profile(tmp_path):
    out = tmp_path / "run.json"
    result = subprocess.run([sys.executable, "-m", "book", "train", "--model", "lenet_bn", "--data", "fashion-mnist",
                             "--profile", "smoke", "--epochs", "2", "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout
    run = json.loads(out.read_text())
    assert len(run["epochs"]) == 2 and run["meta"]["profile"] == "smoke" and run["meta"]["train_images"] == 300
    assert out.with_suffix(".png").stat().st_size > 1000


def test_command_line_missing_data_is_a_clear_error(tmp_path):
    env = {"BOOK_DATA_DIR": str(tmp_path), "BOOK_CACHE_DIR": str(tmp_path / "cache"), "BOOK_DOWNLOAD": "0",
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "book", "train", "--model", "lenet", "--profile", "smoke"],
                            cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 2
    assert "BOOK_DATA_DIR" in result.stderr and "Traceback" not in result.stderr


def test_imagenette_experiment_runs_in_the_smoke_profile():
    """The gpu profile's Imagenette path, exercised small on the CPU with real Imagenette images."""
    from book.experiment import prepare, run

    experiment = prepare("resnet18", Runtime.detect("smoke"), dataset="imagenette")
    assert experiment.train.dataset_size == 300 and experiment.train.images.shape[1] == 3
    assert experiment.train.classes[0] == "tench"
    history = run(experiment, progress=False, live_plot=False)
    assert len(history.records) == 1 and 0 <= history.final_val_acc <= 1


@pytest.mark.parametrize("name", ["lenet_bn", "alexnet", "vgg11", "nin", "googlenet", "resnet18", "densenet121", "vit",
                                  "coatnet"])
def test_gpu_profile_recipes_build_and_step_on_the_cpu(name):
    """No GPU here: check that each gpu-profile recipe (paper model, D2L resolution) builds and trains a step."""
    from book.experiment import prepare

    experiment = prepare(name, Runtime.detect("gpu", "cpu"))
    x, y = next(iter(experiment.train))
    assert x.shape[-1] == experiment.recipe.resolution
    output = experiment.model(x[:2])
    logits = output[0] if isinstance(output, tuple) else output
    assert logits.shape == (2, 10)
    torch.nn.functional.cross_entropy(logits, y[:2]).backward()


def test_bf16_is_the_default_only_where_the_cpu_has_it(monkeypatch):
    from book.runtime import native_bf16

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # the floor machine, emulated: no bf16 instructions
    assert native_bf16(torch.device("cpu")) is False
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    hardware = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    expected = hardware and torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    assert native_bf16(torch.device("cpu")) is expected
    assert native_bf16(torch.device("cuda")) is True


def test_book_bf16_overrides_the_default(monkeypatch):
    from book.runtime import default_bf16

    monkeypatch.setenv("BOOK_BF16", "0")
    assert default_bf16(torch.device("cuda")) is False
    monkeypatch.setenv("BOOK_BF16", "1")
    assert default_bf16(torch.device("cpu")) is True
    monkeypatch.setenv("BOOK_BF16", "yes")
    with pytest.raises(ValueError, match="BOOK_BF16"):
        default_bf16(torch.device("cpu"))
