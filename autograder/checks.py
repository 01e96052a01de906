"""Helpers for hidden tests: is this the student's own code, and does it behave like the reference?"""

from __future__ import annotations

import types

import torch
from torch import nn


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names) | set(code.co_varnames) | set(code.co_freevars)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _from_any(obj, prefixes: tuple[str, ...]) -> bool:
    module = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None) or ""
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def uses(obj, prefixes: tuple[str, ...]) -> bool:
    """True if ``obj`` (a function, a class, or a module instance) is or reaches code from ``prefixes``.

    For a function or class, every global name its code mentions is looked up; ``book`` counts when
    its attribute chain can reach one of the prefixes (``book.models`` through ``import book``).
    """
    if isinstance(obj, nn.Module):
        return any(_from_any(type(m), prefixes) for m in obj.modules())
    if isinstance(obj, type):
        if _from_any(obj, prefixes):
            return True
        return any(uses(v, prefixes) for v in vars(obj).values() if isinstance(v, types.FunctionType))
    if isinstance(obj, types.FunctionType):
        if _from_any(obj, prefixes):
            return True
        names = _names(obj.__code__)
        scope = dict(obj.__globals__)
        for name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or ()):
            try:
                scope[name] = cell.cell_contents
            except ValueError:  # a closure cell not yet filled
                pass
        for name in names:
            value = scope.get(name)
            if value is None:
                continue
            if _from_any(value, prefixes):
                return True
            if isinstance(value, types.ModuleType):  # `import book` then book.models.build(...)
                for prefix in prefixes:
                    parts = prefix.split(".")
                    if value.__name__ == parts[0] and all(p in names for p in parts[1:]):
                        return True
        return False
    return _from_any(obj, prefixes)


def assert_own_model(obj) -> None:
    """Fail (no points) when an answer builds its model from the course library's reference."""
    assert not uses(obj, ("book.models",)), "the answer uses the reference model from book.models"


def assert_formula(fn) -> None:
    """Fail when a "by formula" answer counts with torch or the course library instead."""
    assert not uses(fn, ("torch", "book")), "the answer counts with torch or book instead of a formula"


def copy_parameters(source: nn.Module, target: nn.Module) -> None:
    """Copy parameters and buffers in registration order, shape by shape (names may differ)."""
    src = list(source.state_dict().values())
    dst = target.state_dict()
    assert len(src) == len(dst), f"{len(dst)} tensors in the state dict, the reference has {len(src)}"
    for (name, tensor), value in zip(dst.items(), src):
        assert tensor.shape == value.shape, f"{name}: shape {tuple(tensor.shape)}, reference {tuple(value.shape)}"
    target.load_state_dict(dict(zip(dst.keys(), src)))


def same_function(reference: nn.Module, candidate: nn.Module, shape: tuple[int, ...], seed: int = 0,
                  train: bool = False, atol: float = 1e-5) -> bool:
    """With the reference's weights, does the candidate compute the same outputs on a seeded random batch?"""
    copy_parameters(reference, candidate)
    reference.train(train), candidate.train(train)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return torch.allclose(reference(x), candidate(x), atol=atol)
