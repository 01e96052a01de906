"""book.compare: the stored chapter runs read back (and refused when malformed), the Pareto front, and the
closing table's measured columns against book.summary.count. No training: a few forward passes only."""

import re
from types import SimpleNamespace

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook, new_output

from book import compare, models, profiles, runs, summary
from book.runtime import Runtime
from book.train import EpochRecord, History

MACHINE = {"profile": "cpu", "device": "cpu", "cpu_count": 2, "cpu_capability": "AVX2", "bf16": False,
           "executed_at": "2026-01-01T00:00:00+00:00"}
RUNTIME = Runtime(profiles.get_profile("cpu"), torch.device("cpu"), False, True, "AVX2")


def recorded(model: str, accuracy: float = 0.9, epochs: int = 2, minutes: float = 1.5, **options) -> dict:
    """The run record chapter.train_and_report stores for ``model`` in the cpu profile, written by book.runs."""
    recipe = profiles.recipe(model, "cpu")
    params = sum(p.numel() for p in models.build_small(model, **options).parameters())
    experiment = SimpleNamespace(recipe=recipe, dataset="fashion-mnist", options=options, runtime=RUNTIME,
                                 train=SimpleNamespace(dataset_size=60_000), test=SimpleNamespace(dataset_size=10_000))
    seconds = minutes * 60 / epochs
    history = History([EpochRecord(e + 1, 0.5, 0.8, 0.4, accuracy if e == epochs - 1 else 0.8, 900.0, seconds, 0.1)
                       for e in range(epochs)])
    record = runs.record(experiment, history, model.upper(), params)
    assert runs.bundle(record)[runs.MIME] is record
    return record


def write(path, cells, meta=MACHINE):
    """A notebook of code cells (source, run record, or None for no output) with ``meta`` as modern_cnns."""
    notebook = new_notebook()
    for source, record in cells:
        cell = new_code_cell(source)
        if record is not None:
            # a record as the chapter stores it; a malformed one cannot go through runs.bundle
            data = record if "text/plain" in record else {"text/plain": "run", runs.MIME: record}
            cell.outputs = [new_output("stream", name="stdout", text="Recipe(...)\n"),
                            new_output("display_data", data=data)]
        notebook.cells.append(cell)
    if meta is not None:
        notebook.metadata["modern_cnns"] = meta
    nbformat.write(notebook, path)
    return path


def test_the_stored_chapters_are_read_with_their_profile_and_machine():
    found = compare.stored_runs()
    expected = {"01_alexnet": "alexnet", "02_vgg": "vgg11", "03_nin": "nin", "04_googlenet": "googlenet",
                "05_batchnorm": "lenet_bn", "06_resnet": "resnet18", "07_densenet": "densenet121",
                "08_vit_coatnet": "coatnet"}
    assert {run.chapter: run.model for run in found.runs} == expected
    assert {run.model for run in found.runs if run.chapter == "08_vit_coatnet"} == {"vit", "coatnet"}
    for run in found.runs:
        notebook = nbformat.read(compare.CHAPTERS_DIR / f"{run.chapter}.ipynb", as_version=4)
        meta = notebook.metadata["modern_cnns"]
        assert (run.profile, run.device, run.cpu_capability) == (meta["profile"], meta["device"],
                                                                 meta["cpu_capability"])
        text = "".join(o.get("text", "") for o in notebook.cells[run.cell].outputs if o.output_type == "stream")
        assert f"{run.recipe}\n{run.params:,} parameters" in text  # the record and what the reader saw agree
        assert f"test accuracy {run.test_accuracy:.4f} after {run.epochs} epoch" in text
        assert 0 < run.test_accuracy <= 1 and run.train_minutes > 0
        assert compare.trained_costs(run)["matches"], f"{run.model}: today's code has another parameter count"


def test_a_pending_chapter_is_not_run_yet_until_executed_then_its_runs_are_read(tmp_path):
    write(tmp_path / "01_a.ipynb", [('trained = chapter.train_and_report(runtime, "alexnet", "AlexNet")',
                                    recorded("alexnet"))])
    options = dict(required=("01_a",), pending=("08_vit_coatnet",))
    found = compare.stored_runs(tmp_path, **options)  # missing
    assert found.not_run == ["08_vit_coatnet"] and [run.model for run in found.runs] == ["alexnet"]

    sources = ['trained_vit = chapter.train_and_report(runtime, "vit", "ViT (small)")',
               'trained_coatnet = chapter.train_and_report(runtime, "coatnet", "CoAtNet (small)", layout="CCCT")']
    path = write(tmp_path / "08_vit_coatnet.ipynb", [(s, None) for s in sources], meta=None)
    assert compare.stored_runs(tmp_path, **options).not_run == ["08_vit_coatnet"]  # written, not executed

    write(path, [(sources[0], recorded("vit", 0.88)), (sources[1], recorded("coatnet", 0.87, epochs=1, layout="CCCT"))])
    found = compare.stored_runs(tmp_path, **options)
    assert found.not_run == [] and [run.model for run in found.runs] == ["alexnet", "vit", "coatnet"]
    coatnet = found.get("coatnet")
    assert (coatnet.test_accuracy, coatnet.epochs, coatnet.options) == (0.87, 1, {"layout": "CCCT"})
    assert coatnet.train_minutes == pytest.approx(1.5) and coatnet.machine == "cpu profile on cpu (AVX2, 2 cores)"
    assert len(coatnet.history["epochs"]) == 1
    cost = compare.trained_costs(coatnet)
    expected = summary.count(models.build_small("coatnet", layout="CCCT"), (1, 1, 32, 32))["macs"]
    assert cost["matches"] and cost["macs"] == expected


def _without(field):
    record = recorded("alexnet")
    del record[field]
    return record


@pytest.mark.parametrize("cells, meta, complaint", [
    ([("chapter.train_and_report(runtime, 'alexnet', 'A')", None)], MACHINE, "holds no stored run"),
    ([("chapter.train_and_report(runtime, 'alexnet', 'A')", recorded("alexnet"))], None, "no `modern_cnns` metadata"),
    ([("x = 1", {**recorded("alexnet"), "version": 0})], MACHINE, "run record of version 0"),
    ([("x = 1", _without("history"))], MACHINE, "lacks history"),
    ([("x = 1", {**recorded("alexnet"), "recipe": {"model": "alexnet", "exec": "os"}})], MACHINE,
     "fields today's Recipe does not have: exec"),
    ([("x = 1", {**recorded("alexnet"), "history": {"epochs": []}})], MACHINE, "no epoch with a test accuracy"),
    ([("x = 1", {"text/plain": "x", runs.MIME: ["not", "a", "record"]})], MACHINE, "is a JSON object"),
    ([("print('no training here')", None)], MACHINE, "holds no train_and_report run"),
])
def test_malformed_or_missing_runs_are_refused_with_the_fix(tmp_path, cells, meta, complaint):
    write(tmp_path / "01_a.ipynb", cells, meta)
    with pytest.raises(compare.StoredRunError, match=re.escape(complaint)) as error:
        compare.stored_runs(tmp_path, required=("01_a",), pending=())
    assert "make chapters" in str(error.value)


def test_a_missing_or_unreadable_required_chapter_is_refused(tmp_path):
    with pytest.raises(compare.StoredRunError, match="does not exist"):
        compare.stored_runs(tmp_path, required=("01_a",), pending=())
    (tmp_path / "01_a.ipynb").write_text("{ not json")
    with pytest.raises(compare.StoredRunError, match="not a readable notebook"):
        compare.stored_runs(tmp_path, required=("01_a",), pending=())


def test_pareto_front():
    points = [(1, 0.80), (2, 0.90), (3, 0.85), (4, 0.95), (2, 0.70), (5, 0.95)]
    assert compare.pareto_front(points) == [(1, 0.80), (2, 0.90), (4, 0.95)]
    assert compare.pareto_front([(3, 0.5), (1, 0.9)]) == [(1, 0.9)]  # cheaper and better dominates
    assert compare.pareto_front([(1, 0.9), (1, 0.9)]) == [(1, 0.9), (1, 0.9)]  # equal points both stay
    assert compare.pareto_front([]) == []
    assert compare.pareto_front(iter([(2, 1), (1, 1)])) == [(1.0, 1.0)]  # same accuracy: the cheaper one


def test_the_table_measured_columns_are_summary_count(tmp_path):
    chosen = [a for a in compare.all_architectures() if a.label in ("AlexNet", "ResNet-18", "BN-Inception")]
    networks = compare.build_all(chosen)
    assert set(networks) == {"AlexNet", "ResNet-18"}  # the book has no BN-Inception
    measured = compare.costs(networks)
    times = compare.latency(networks, warmup=0, repeats=1, image=(1, 3, 64, 64))
    assert {label: len(t) for label, t in times.items()} == {"AlexNet": 1, "ResNet-18": 1}
    write(tmp_path / "01_a.ipynb", [("chapter.train_and_report(runtime, 'alexnet', 'A')", recorded("alexnet", 0.91))])
    runs = compare.stored_runs(tmp_path, required=("01_a",), pending=("08_vit_coatnet",))
    rows = compare.comparison(runs, measured, times, chosen)
    table = compare.table(rows)
    for row in rows:
        if row.architecture.model is None:
            assert row.params is None and table.row(row.architecture.label)[5] == "no model"
            continue
        expected = summary.count(models.build(row.architecture.model), compare.IMAGE)
        assert (row.params, row.macs) == (expected["params"], expected["macs"])
        shown = table.row(row.architecture.label)
        assert shown[5:7] == [f"{expected['params'] / 1e6:.1f}", f"{expected['macs'] / 1e9:.2f}"]
    assert rows[0].latency_ratio == 1.0 and table.row("AlexNet")[8:11] == ["1.00", "0.9100", "1.5"]
    assert table.row("ResNet-18")[9] == "no run in 06_resnet"
    assert table.row("BN-Inception")[1:3] == ["25.2", "7.82"]
    assert "not reported" in table.row("ResNet-18")  # the ResNet paper gives no top-5 for ResNet-18
    assert torch.is_grad_enabled()
