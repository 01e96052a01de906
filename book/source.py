"""Show the library's own code in a chapter, so that no model is ever pasted twice."""

from __future__ import annotations

import inspect


class Source:
    """Source code that renders as a highlighted block in notebooks and as plain text elsewhere."""

    def __init__(self, code: str, title: str):
        self.code, self.title = code, title

    def _repr_markdown_(self) -> str:
        return f"`{self.title}`\n\n```python\n{self.code}\n```"

    def __str__(self) -> str:
        return self.code


def show(obj) -> Source:
    """The source of a class, function or method of ``book`` (or anything ``inspect`` can read)."""
    module = inspect.getmodule(obj)
    title = f"{module.__name__}.{getattr(obj, '__qualname__', '')}" if module else repr(obj)
    return Source(inspect.getsource(obj).rstrip(), title)
