"""A chapter's training run as data: written by ``chapter.train_and_report``, read by
``book.compare``.

The run is one display output with its own MIME type,
``application/vnd.modern-cnns.run+json``, beside a one-line ``text/plain`` that the
rendered book shows. It holds the recipe, the call's own model options, the runtime
(profile, device, precision) and the whole per-epoch history, so that the closing
chapter reads numbers, not printed text. A record of another version, or one that lacks
a field, is refused.
"""

from __future__ import annotations

from dataclasses import asdict, fields

from .profiles import Recipe

MIME = "application/vnd.modern-cnns.run+json"
VERSION = 1
_FIELDS = {"version", "model", "title", "dataset", "recipe", "options", "runtime", "params", "train_images",
           "test_images", "history", "imagenette"}


class RunRecordError(ValueError):
    """A stored output is not a run record this code can read."""


def record(experiment, history, title: str, params: int, imagenette_history=None) -> dict:
    """The run of ``experiment`` (``experiment.Experiment``) as JSON-ready data."""
    def accuracy(h):
        return None if h is None else {"val_acc": h.final_val_acc, "epochs": len(h.records),
                                       "train_seconds": h.train_seconds}

    recipe = asdict(experiment.recipe)
    recipe["options"] = [list(pair) for pair in experiment.recipe.options]
    return {"version": VERSION, "model": experiment.recipe.model, "title": title, "dataset": experiment.dataset,
            "recipe": recipe, "options": experiment.options, "runtime": experiment.runtime.as_dict(),
            "params": params, "train_images": experiment.train.dataset_size,
            "test_images": experiment.test.dataset_size, "history": history.to_dict(),
            "imagenette": accuracy(imagenette_history)}


def bundle(run: dict) -> dict:
    """The display bundle of a run: the data, and the line a reader of the book sees."""
    final = run["history"]["epochs"][-1]["val_acc"] if run["history"]["epochs"] else None
    shown = f"{final:.4f}" if final is not None else "none"
    text = (f"run recorded for the comparison (chapter 9): {run['title']}, {run['model']}, "
            f"{run['runtime']['profile']} profile, test accuracy {shown}")
    return {"text/plain": text, MIME: run}


def recipe_of(run: dict) -> Recipe:
    """The ``Recipe`` a record stored; fields today's ``Recipe`` does not have are refused."""
    values = dict(run["recipe"])
    known = {f.name for f in fields(Recipe)}
    if unknown := set(values) - known:
        raise RunRecordError(f"its recipe has fields today's Recipe does not have: {', '.join(sorted(unknown))}")
    values["options"] = tuple(tuple(pair) for pair in values.get("options", ()))
    try:
        return Recipe(**values)
    except TypeError as error:
        raise RunRecordError(f"its recipe cannot be read ({error})") from None


def check(run) -> dict:
    """``run`` if it is a record of this version with every field, else ``RunRecordError``."""
    if not isinstance(run, dict):
        raise RunRecordError(f"a run record is a JSON object, not {type(run).__name__}")
    if run.get("version") != VERSION:
        raise RunRecordError(f"it is a run record of version {run.get('version')!r}; this code reads version "
                             f"{VERSION}")
    if missing := _FIELDS - set(run):
        raise RunRecordError(f"the run record lacks {', '.join(sorted(missing))}")
    return run
