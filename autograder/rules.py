""""Own code" rules, checked on the trusted side from the submitted source's AST (issue 9, point 7).

- ``own-model``: the answer may not build on the reference library (``book.models``) nor on
  ``torchvision.models``.
- ``formula``: the answer computes by formula: no torch, torchvision or ``book`` at all.
- ``own-attention``: ``own-model``, and the answer writes its attention itself: no library attention
  (``nn.MultiheadAttention``, ``scaled_dot_product_attention``, the ``nn.Transformer*`` layers), which
  are forbidden by name (``FORBIDDEN_NAMES``), since torch itself cannot be.

A name is *tainted* when it is bound to a forbidden module (by any import in any submitted cell), or
defined by code that uses a tainted name or a dynamic trick (``importlib``, ``__import__``, ``getattr``,
``exec``, dunder attributes, IPython magics, non-constant default arguments). Taint spreads through
every cell until nothing changes, so a helper in another cell does not launder a forbidden call. The
answer cell breaks its rule when it imports a forbidden module, uses a tainted name, or uses a trick.
"""

from __future__ import annotations

import ast
import functools
import re

FORBIDDEN = {
    "own-model": ("book.models", "torchvision.models"),
    "formula": ("torch", "torchvision", "book"),
    "own-attention": ("book.models", "torchvision.models"),
}
# Library code a rule forbids by name, wherever the submission reaches it: as an attribute
# (``nn.MultiheadAttention``, ``F.scaled_dot_product_attention``, ``torch.ops.aten._scaled_dot_product_…``),
# as an imported name, or as a bare name the submission does not define itself; a star import counts
# too. A name of the submission's own (a function, a variable, ``self.<attribute>``) is never forbidden.
# ``operator.attrgetter``/``methodcaller`` would reach the same objects from a string.
FORBIDDEN_NAMES = {
    "own-attention": re.compile(r"MultiheadAttention|multi_head_attention|scaled_dot_product|"
                                r"transformer_encoder_layer|^Transformer(Encoder|Decoder)?(Layer)?$|"
                                r"^(attrgetter|methodcaller)$"),
}
DYNAMIC_NAMES = {"__import__", "importlib", "getattr", "setattr", "delattr", "exec", "eval", "compile",
                 "globals", "locals", "vars", "__builtins__", "builtins", "sys", "get_ipython", "open",
                 "breakpoint", "input"}
# In another cell, only what can import, rebind or run code behind the AST's back counts: a student may
# well ``import sys`` or ``open`` a file there without touching any answer.
OTHER_CELL_TRICKS = {"__import__", "importlib", "setattr", "exec", "eval", "compile", "globals", "vars",
                     "__builtins__", "builtins", "get_ipython", "modules"}
ALLOWED_DUNDERS = {"__init__", "__name__", "__class__"}


@functools.lru_cache(maxsize=512)
def _python(source: str) -> ast.Module | None:
    """The cell as Python; IPython magics become get_ipython() calls, which count as tricks.

    Cached, since every ruled question reads every cell: the tree is shared, so read it, never change it."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        source = TransformerManager().transform_cell(source)
    except Exception:
        pass
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def _forbidden_module(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") or p.startswith(module + ".") for p in prefixes)


def _tricks(node: ast.AST) -> list[str]:
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in DYNAMIC_NAMES:
            found.append(sub.id)
        elif isinstance(sub, ast.Attribute) and sub.attr.startswith("__") and sub.attr not in ALLOWED_DUNDERS:
            found.append(sub.attr)
        elif isinstance(sub, ast.Attribute) and sub.attr == "modules" and getattr(sub.value, "id", "") == "sys":
            found.append("modules")   # sys.modules (not nn.Module.modules())
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in sub.names] if isinstance(sub, ast.Import) else [sub.module or ""]
            found += [m for m in modules if m.split(".")[0] in DYNAMIC_NAMES - {"sys"} | {"ctypes", "inspect", "gc"}]
            if isinstance(sub, ast.ImportFrom) and sub.module == "sys" and any(a.name == "modules" for a in sub.names):
                found.append("modules")
            if isinstance(sub, ast.Import) and any(a.name == "sys" and a.asname for a in sub.names):
                found.append("sys under another name")
        elif isinstance(sub, ast.arguments):
            defaults = [d for d in [*sub.defaults, *sub.kw_defaults] if d is not None]
            if any(not isinstance(d, ast.Constant) and not _negative_constant(d) for d in defaults):
                found.append("a non-constant default argument")
    return found


def _negative_constant(node: ast.AST) -> bool:
    return isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant)


def _loads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _bindings(tree: ast.Module):
    """(names bound, the node that binds them) for every top-level statement."""
    for statement in tree.body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            for alias in statement.names:
                yield {(alias.asname or alias.name).split(".")[0]}, statement
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield {statement.name}, statement
        else:
            targets = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            if targets:
                yield targets, statement


def _imports_forbidden(node: ast.AST, prefixes: tuple[str, ...]) -> list[str]:
    bad = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            bad += [a.name for a in sub.names if _forbidden_module(a.name, prefixes)]
        elif isinstance(sub, ast.ImportFrom):
            module = sub.module or ""
            for alias in sub.names:
                if _forbidden_module(module, prefixes) or _forbidden_module(f"{module}.{alias.name}", prefixes):
                    bad.append(f"{module}.{alias.name}")
    return bad


def own_names(sources: list[str]) -> set[str]:
    """Names the submission defines itself: functions, classes, arguments, assigned names, ``self.x``."""
    own: set[str] = set()
    for tree in filter(None, map(_python, sources)):
        for sub in ast.walk(tree):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(sub.name)
            elif isinstance(sub, ast.arg):
                own.add(sub.arg)
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                own.add(sub.id)
            elif (isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store)
                  and isinstance(sub.value, ast.Name) and sub.value.id == "self"):
                own.add(sub.attr)
    return own


def _named(node: ast.AST, pattern: re.Pattern | None, own: set[str]) -> list[str]:
    """The forbidden library names (``FORBIDDEN_NAMES``) that ``node`` reaches."""
    if pattern is None:
        return []
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and pattern.search(sub.attr):
            if not (isinstance(sub.value, ast.Name) and sub.value.id == "self" and sub.attr in own):
                found.append(sub.attr)
        elif isinstance(sub, ast.Name) and pattern.search(sub.id) and sub.id not in own:
            found.append(sub.id)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            for alias in sub.names:
                if alias.name == "*":
                    found.append(f"a star import from {getattr(sub, 'module', None) or '.'}")
                elif any(pattern.search(part) for part in alias.name.split(".")):
                    found.append(alias.name)
    return found


def tainted_names(sources: list[str], prefixes: tuple[str, ...], pattern: re.Pattern | None = None) -> set[str]:
    """Every global name that can reach a forbidden module, a forbidden name or a dynamic trick, across all cells."""
    bindings = [b for tree in filter(None, map(_python, sources)) for b in _bindings(tree)]
    own = own_names(sources) if pattern is not None else set()
    tainted: set[str] = set()
    changed = True
    while changed:
        changed = False
        for names, node in bindings:
            if names <= tainted:
                continue
            if (_imports_forbidden(node, prefixes) or _tricks(node) or _named(node, pattern, own)
                    or (_loads(node) - names) & tainted):
                tainted |= names
                changed = True
    return tainted


def _patches(node: ast.AST, tainted: set[str]) -> bool:
    """An assignment to an attribute or item (``nn.Sequential.forward = ...``) from tainted code."""
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
            if any(isinstance(t, (ast.Attribute, ast.Subscript)) for t in targets) and _loads(sub) & tainted:
                return True
    return False


def violations(rule: str | None, answer: str, all_sources: list[str]) -> list[str]:
    """Why the answer cell breaks ``rule`` (empty when it keeps it). ``all_sources``: every submitted cell."""
    if rule is None:
        return []
    prefixes, pattern = FORBIDDEN[rule], FORBIDDEN_NAMES.get(rule)
    tree = _python(answer)
    if tree is None:
        return []   # it cannot run either; the judges give it nothing
    problems = [f"imports {m}" for m in _imports_forbidden(tree, prefixes)]
    problems += [f"uses {t}" for t in dict.fromkeys(_tricks(tree))]
    if pattern is not None:
        named = _named(tree, pattern, own_names(all_sources))
        problems += [f"uses {n} (library attention)" for n in dict.fromkeys(named)]
    tainted = tainted_names(all_sources, prefixes, pattern)
    defined = {n for names, _ in _bindings(tree) for n in names}
    reach = " or ".join(prefixes) + (" or library attention" if pattern is not None else "")
    problems += [f"uses {n}, which reaches {reach}" for n in sorted((_loads(tree) - defined) & tainted)]
    if not problems:  # a clean answer whose names another cell defines again, with forbidden code
        problems += [f"{n} is defined again in another cell with code that reaches {reach}"
                     for n in sorted(defined & tainted)]
    others = [t for t in map(_python, all_sources) if t is not None and t is not tree]
    tricks = sorted({t for other in others for t in _tricks(other)
                     if t in OTHER_CELL_TRICKS or t.startswith("__") or t == "a non-constant default argument"})
    if tricks:
        problems.append(f"another cell uses {', '.join(tricks)}")
    if rule in ("own-model", "own-attention") and any(_patches(other, tainted) for other in others):
        problems.append(f"another cell patches an object with code that reaches {reach}")
    return problems
