"""book.notebooks on tiny synthetic notebooks in a real python3 kernel: the fingerprint skips what has not
changed, and a stored run stores no widget state, text progress and one training figure."""

import os

import nbformat
import pytest

from book import notebooks


def write(path, *sources, markdown="# a synthetic notebook"):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell(markdown)] + [nbformat.v4.new_code_cell(s) for s in sources]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


def test_an_unchanged_notebook_is_skipped_and_a_changed_cell_reruns(tmp_path, capsys):
    path = tmp_path / "tiny.ipynb"
    write(path, "print(6 * 7)")
    args = [str(path), "--profile", "smoke"]
    notebooks.main(args)
    assert "executing" in capsys.readouterr().out
    stored = nbformat.read(path, as_version=4)
    assert stored.cells[1].outputs[0]["text"] == "42\n"
    assert stored.metadata["modern_cnns"]["fingerprint"]["profile"] == "smoke"

    notebooks.main(args)
    out = capsys.readouterr().out
    assert out.startswith(f"skipping {path}: up to date") and "--force" in out

    write(path, "print(6 * 7)", markdown="# prose edited")  # prose changes no output: still skipped
    stored_fingerprint = stored.metadata["modern_cnns"]
    edited = nbformat.read(path, as_version=4)
    edited.metadata["modern_cnns"] = stored_fingerprint
    nbformat.write(edited, path)
    notebooks.main(args)
    assert capsys.readouterr().out.startswith("skipping")

    edited.cells[1].source = "print(6 * 9)"
    nbformat.write(edited, path)
    notebooks.main(args)
    assert "executing" in (out := capsys.readouterr().out) and "code cells changed" in out
    assert nbformat.read(path, as_version=4).cells[1].outputs[0]["text"] == "54\n"

    notebooks.main(args + ["--profile", "cpu"])  # another profile: outputs would differ
    assert "profile smoke -> cpu" in capsys.readouterr().out
    notebooks.main(args + ["--profile", "cpu", "--force"])
    assert "executing" in capsys.readouterr().out


FIT = """
import torch
from torch import nn
from book.train import fit
torch.manual_seed(0)
batches = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(3)]
history = fit(nn.Linear(4, 2), batches, epochs=2, lr=0.1, device="cpu", bf16=False, channels_last=False)
"""
EXPLORE = """
from book import viz
net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3))
explorer = viz.feature_explorer(net, torch.rand(3, 1, 8, 8), ["1", "3"], labels=["a", "b", "c"])
"""


def test_a_stored_run_stores_no_widgets_text_progress_and_one_figure(tmp_path):
    path = tmp_path / "train.ipynb"
    # The library's other bar (decoding a data set) would leave a widget too: the stored run turns it off.
    other_bar = "from book.data import progress\nfor _ in progress(range(3), 'decoding'):\n    pass"
    write(path, FIT, EXPLORE, other_bar)
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}  # stale state
    nbformat.write(notebook, path)
    notebooks.execute(path, "smoke", timeout=300)
    assert "BOOK_STORED_RUN" not in os.environ  # set for the kernel only
    stored = nbformat.read(path, as_version=4)
    assert "widgets" not in stored.metadata
    outputs = [output for cell in stored.cells if cell.cell_type == "code" for output in cell.outputs]
    kinds = [mime for output in outputs for mime in output.get("data", {})]
    assert "application/vnd.jupyter.widget-view+json" not in kinds
    assert kinds.count("image/png") == 1  # the training curves, drawn once at the end
    text = "".join(output.get("text", "") for output in outputs if output["output_type"] == "stream")
    assert "epoch 1/2: train loss" in text and "epoch 2/2: train loss" in text and "\r" not in text
    explorer = [output["data"]["text/html"] for output in outputs if "text/html" in output.get("data", {})]
    assert len(explorer) == 1 and "<canvas" in explorer[0] and "<script>" in explorer[0]


@pytest.fixture(autouse=True)
def _no_stored_run_outside(monkeypatch):
    monkeypatch.delenv("BOOK_STORED_RUN", raising=False)
