"""Python source for recorded steps: compact, valid, and importable from a regression file.

``render`` writes attrs values positionally and drops fields left at their default, so a step
reads like ``d.delete("alice", "notes", Cmp("=", Col("id"), Lit(3)))`` rather than a repr dump.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any, cast

import attrs


def _qualified(value: object) -> str:
    """``module:Name``, for the regression file's imports."""
    return f"{type(value).__module__}:{type(value).__name__}"


def render(value: object, imports: set[str] | None = None) -> str:
    """Source text that rebuilds ``value``; ``module:Name`` of each class used goes to ``imports``."""
    found = imports if imports is not None else set()
    if isinstance(value, enum.Enum):
        found.add(_qualified(value))
        return f"{type(value).__name__}.{value.name}"
    if attrs.has(type(value)):
        found.add(_qualified(value))
        fields = attrs.fields(cast(Any, type(value)))
        args: list[str] = []
        positional = True
        for f in fields:
            v = getattr(value, f.name)
            default = f.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = default.factory()
            if default is not attrs.NOTHING and v == default:
                positional = False
                continue
            text = render(v, found)
            args.append(text if positional else f"{f.name}={text}")
        return f"{type(value).__name__}({', '.join(args)})"
    if isinstance(value, Mapping):
        return (
            "{"
            + ", ".join(f"{render(k, found)}: {render(v, found)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, tuple):
        inner = ", ".join(render(v, found) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(render(v, found) for v in value) + "]"
    return repr(value)


def call(name: str, args: Iterable[object], kwargs: Mapping[str, object], imports: set[str]) -> str:
    """``d.name(arg, ..., key=value)`` with keyword arguments left at None omitted."""
    parts = [render(a, imports) for a in args]
    parts += [f"{k}={render(v, imports)}" for k, v in kwargs.items() if v is not None]
    return f"d.{name}({', '.join(parts)})"
