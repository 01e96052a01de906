"""One ``Spec`` per architecture, registered in its model file: everything the rest of
the book knows about it.

``build`` and ``build_small`` (``book.models``), the recipes (``book.profiles``), the
layer names and paper tables (``book.summary``), the diagram (``book.diagram``) and the
closing comparison (``book.compare``) all read the registry and keep no table of their
own. Adding an architecture is one file: its modules, its builders and one
``register(Spec(...))``, as timm registers a model beside its code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn


@dataclass(frozen=True)
class Compared:
    """One row of the closing comparison (chapter 9): an architecture a paper reports on
    ImageNet."""

    label: str              # "ResNet-18"
    model: str | None       # the name ``build`` takes; None: the book has no model of it
    paper: str              # key of ``papers.IMAGENET``
    trained: bool = False   # whether the chapter trains this model on Fashion-MNIST
    note: str = ""          # what stands in the Fashion-MNIST column when it is not trained


@dataclass(frozen=True)
class Spec:
    """An architecture family: its builders, its small configuration, its recipes and
    how it is shown.

    - ``builders``: {name: builder(num_classes=, in_channels=, **options)}, the paper's
      configurations.
    - ``small``: {name: (input side in px, options)}, the Fashion-MNIST configuration of
      each name.
    - ``cpu`` and ``gpu``: the Fashion-MNIST recipe (``profiles.Recipe`` fields) of
      every name of the family, for the small configuration (cpu and smoke profiles) and
      the paper's (gpu profile).
    - ``model_class``: the class the builders return (its ``layer_names`` method gives
      the paper's names); None when the builders return a plain ``nn.Sequential``.
    - ``imagenet``: False when the paper has no ImageNet configuration (LeNet):
      ``build`` then defaults to one channel and ten classes.
    """

    family: str
    chapter: str                                   # notebook stem of the chapter that teaches it
    builders: dict[str, Callable[..., nn.Module]]
    small: dict[str, tuple[int, dict]]
    cpu: dict
    gpu: dict
    model_class: type[nn.Module] | None = None
    # torchview depth whose boxes are the paper's units
    diagram_depth: int = 1
    # (module path, torchview depth inside it) of the one unit ``diagram.block_diagram``
    # draws in full: where the architecture's idea is (ResNet's shortcuts, DenseNet's
    # concatenations), below the boxes of diagram_depth
    diagram_block: tuple[str, int] | None = None
    # {module path: word after its box's name}
    diagram_tags: Callable[[nn.Module], dict[str, str]] | None = None
    paper_table: Callable[[], object] | None = None  # our measured counts beside the paper's table
    compared: tuple[Compared, ...] = ()
    imagenet: bool = True

    def __post_init__(self):
        if set(self.small) != set(self.builders):
            missing = sorted(set(self.builders) ^ set(self.small))
            raise ValueError(f"spec {self.family!r}: every builder needs a small "
                             "configuration and the reverse "
                             f"(mismatched: {', '.join(missing)})")


_REGISTRY: dict[str, Spec] = {}


def register(spec: Spec) -> Spec:
    """Add ``spec``; a family or model name that is already registered is refused."""
    if spec.family in _REGISTRY:
        raise ValueError(f"architecture family {spec.family!r} is already registered")
    taken = set(spec.builders) & {name for other in _REGISTRY.values() for name in other.builders}
    if taken:
        raise ValueError("model names already registered by another family: "
                         f"{', '.join(sorted(taken))}")
    _REGISTRY[spec.family] = spec
    return spec


def unregister(family: str) -> None:
    """Remove a family (tests that register a toy architecture clean up with it)."""
    _REGISTRY.pop(family, None)


def specs() -> list[Spec]:
    """Every registered family, in the order of the chapters that teach them."""
    # stable: registration order within a chapter
    return sorted(_REGISTRY.values(), key=lambda spec: spec.chapter)


def spec_for(name: str) -> Spec:
    """The family that builds the model ``name``."""
    for spec in _REGISTRY.values():
        if name in spec.builders:
            return spec
    raise KeyError(f"unknown model {name!r}; choose one of: {', '.join(names())}")


def spec_of(model: nn.Module) -> Spec | None:
    """The family whose class ``model`` is an instance of, or None."""
    return next((spec for spec in specs()
                 if spec.model_class is not None and isinstance(model, spec.model_class)),
                None)


def names() -> list[str]:
    """Every model name ``build`` accepts, family by family."""
    return [name for spec in specs() for name in spec.builders]
