"""The step program as data, and its Python source for regression files.

A driver records each step as a :class:`Step` (the method and its arguments); the minimizer edits
those, and only a regression file renders them. ``render`` writes attrs values positionally and
drops fields left at their default, so a step reads like
``d.delete("alice", "notes", Cmp("=", Col("id"), Lit(3)))`` rather than a repr dump.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import attrs
from attrs import evolve, frozen


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
            if not f.init:
                continue  # derived state (a cache), not something to rebuild it from
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


@frozen
class Step:
    """One driver call: ``d.<name>(*args, **kwargs)``; keyword arguments left at None are not
    kept (the method's default applies)."""

    name: str
    args: tuple[object, ...] = ()
    kwargs: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, name: str, args: Iterable[object], kwargs: Mapping[str, object]) -> Step:
        return cls(name, tuple(args), tuple((k, v) for k, v in kwargs.items() if v is not None))

    def source(self, imports: set[str]) -> str:
        return call(self.name, self.args, dict(self.kwargs), imports)

    def replay(self, driver: object) -> None:
        getattr(driver, self.name)(*self.args, **dict(self.kwargs))

    def with_option(self, key: str, value: object) -> Step:
        return evolve(self, kwargs=(*((k, v) for k, v in self.kwargs if k != key), (key, value)))

    def option(self, key: str) -> object:
        return dict(self.kwargs).get(key)

    def with_first_arg(self, value: object) -> Step:
        return evolve(self, args=(value, *self.args[1:]))


def source(steps: Sequence[Step]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The program as lines of Python, and the ``module:Name`` imports they need (sorted)."""
    imports: set[str] = set()
    lines = tuple(step.source(imports) for step in steps)
    return lines, tuple(sorted(imports))
