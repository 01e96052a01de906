"""torchrun: 2 CPU processes (gloo) train like 1 process with the same global batch, and resume after a kill."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO, real_data_dir


def train_command(processes: int, *args) -> list[str]:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
                if processes > 1 else [sys.executable])
    return [*launcher, "-m", "book", "train", "--model", "lenet", *map(str, args)]


# fp32 on every side: bf16 rounds a batch's gradient differently from the sum of its halves' (~1e-3).
ENV = {"BOOK_BF16": "0"}


def run(command: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "BOOK_DATA_DIR": str(real_data_dir()), **ENV}
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def weights(path) -> dict:
    return torch.load(path, weights_only=False)["model"]


def max_difference(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def test_two_processes_end_where_one_process_with_the_same_global_batch_ends(tmp_path):
    # 300 images in batches of 63: every batch splits unevenly (32 + 31), and the last holds 48.
    common = ["--profile", "smoke", "--epochs", "2", "--batch-size", "63"]
    run(train_command(1, *common, "--checkpoint", tmp_path / "one.pt"))
    two = run(train_command(2, *common, "--checkpoint", tmp_path / "two.pt", "--out", tmp_path / "two.json"))
    difference = max_difference(weights(tmp_path / "one.pt"), weights(tmp_path / "two.pt"))
    print(f"max |weights(2 processes) - weights(1 process)| = {difference:.2e}")
    assert difference <= 1e-5
    assert two.stdout.count("test accuracy") == 1, "only rank 0 prints"
    meta = torch.load(tmp_path / "two.pt", weights_only=False)["history"]["meta"]
    assert (meta["processes"], meta["global_batch"], meta["batch_per_process"], meta["lr"]) == (2, 63, 31, 0.9)
    assert (tmp_path / "two.json").exists() and not list(tmp_path.glob("*.partial"))
    env = {**os.environ, "BOOK_DATA_DIR": str(real_data_dir()), **ENV}
    refused = subprocess.run(train_command(2, "--profile", "smoke", "--batch-size", "1"), cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "smaller than the number of processes" in refused.stderr


def test_a_ddp_run_killed_after_one_epoch_resumes_to_the_same_weights(tmp_path):
    # The cpu profile (all 60,000 images) makes an epoch last seconds, long enough to kill the run after it.
    common = ["--profile", "cpu", "--epochs", "2"]
    run(train_command(2, *common, "--checkpoint", tmp_path / "whole.pt"))

    checkpoint = tmp_path / "killed.pt"
    env = {**os.environ, "BOOK_DATA_DIR": str(real_data_dir()), **ENV}
    victim = subprocess.Popen(train_command(2, *common, "--checkpoint", checkpoint), cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)  # torchrun and both workers, mid-way through epoch 2
    victim.wait()
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 1, "the kill came too late to test a resume"

    resumed = run(train_command(2, *common, "--checkpoint", checkpoint, "--resume"))
    assert "epoch 1/2" not in resumed.stdout + resumed.stderr, "epoch 1 was not trained again"
    difference = max_difference(weights(tmp_path / "whole.pt"), weights(checkpoint))
    print(f"max |weights(resumed) - weights(uninterrupted)| = {difference:.2e}")
    assert difference <= 1e-6
