"""KalamDB column types, cell values and SQL three-valued logic.

A cell value in the model is a plain Python value: ``int`` for Int, BigInt and Timestamp
(microseconds since the epoch), ``float`` for Double, ``str`` for Text, ``bool`` for Boolean and
``None`` for NULL. A truth value is ``True``, ``False`` or ``None`` (SQL UNKNOWN).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping

Value = int | float | str | bool | None
Truth = bool | None
Row = Mapping[str, Value]
#: A row in hashable form; the type tag keeps ``1``, ``1.0`` and ``True`` apart.
FrozenRow = tuple[tuple[str, str, Value], ...]

SEQ = "_seq"
DELETED = "_deleted"
SYSTEM_COLUMNS = (SEQ, DELETED)


class ModelError(Exception):
    """The model was asked something it cannot answer: a bug in the caller, not in the server."""


class ColType(enum.Enum):
    """The KalamDB types the machines generate; values are the wire names of ``data_type``."""

    INT = "Int"
    BIGINT = "BigInt"
    DOUBLE = "Double"
    TEXT = "Text"
    BOOLEAN = "Boolean"
    TIMESTAMP = "Timestamp"

    @property
    def sql(self) -> str:
        return _SQL_NAMES[self]

    def accepts(self, value: Value) -> bool:
        """Whether ``value`` is a legal non-NULL-or-NULL cell of this type."""
        if value is None:
            return True
        if self is ColType.BOOLEAN:
            return isinstance(value, bool)
        if self is ColType.TEXT:
            return isinstance(value, str)
        if self is ColType.DOUBLE:
            return isinstance(value, float) and math.isfinite(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        lo, hi = _INT_RANGES[self]
        return lo <= value <= hi

    def accepts_kind(self, value: Value) -> bool:
        """Whether ``value`` is of this type's kind, in its range or not (an integer for INT)."""
        if self in _INT_RANGES:
            return isinstance(value, int) and not isinstance(value, bool)
        return self.accepts(value)


_SQL_NAMES = {
    ColType.INT: "INT",
    ColType.BIGINT: "BIGINT",
    ColType.DOUBLE: "DOUBLE",
    ColType.TEXT: "TEXT",
    ColType.BOOLEAN: "BOOLEAN",
    ColType.TIMESTAMP: "TIMESTAMP",
}
_INT_RANGES = {
    ColType.INT: (-(2**31), 2**31 - 1),
    ColType.BIGINT: (-(2**63), 2**63 - 1),
    ColType.TIMESTAMP: (-(2**63), 2**63 - 1),
}


def coerce(raw: object, ctype: ColType) -> Value:
    """Turn a JSON-decoded wire cell into a model value of ``ctype``.

    The wire sends Int64 as strings and every number as JSON numbers, so equality in the
    invariants only works after this normalisation. Anything that does not fit is returned
    unchanged, so that the comparison reports it as a wrong value instead of crashing.
    """
    if raw is None:
        return None
    if ctype in (ColType.INT, ColType.BIGINT, ColType.TIMESTAMP):
        if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw):
            return int(raw)
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        return _opaque(raw)
    if ctype is ColType.DOUBLE:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        return _opaque(raw)
    if ctype is ColType.BOOLEAN:
        return raw if isinstance(raw, bool) else _opaque(raw)
    return raw if isinstance(raw, str) else _opaque(raw)


def _opaque(raw: object) -> Value:
    if isinstance(raw, int | float | str | bool):
        return raw
    return repr(raw)


def freeze(row: Row) -> FrozenRow:
    return tuple(sorted((k, type(v).__name__, v) for k, v in row.items()))


def thaw(frozen: FrozenRow) -> dict[str, Value]:
    return {k: v for k, _, v in frozen}


def render_row(row: Row) -> str:
    """A compact, stable rendering for failure reports: ``{id=1, name='a'}``."""
    return "{" + ", ".join(f"{k}={v!r}" for k, v in sorted(row.items())) + "}"


def render_rows(rows: Iterable[Row], limit: int = 8) -> str:
    items = list(rows)
    shown = [render_row(r) for r in items[:limit]]
    if len(items) > limit:
        shown.append(f"... ({len(items) - limit} more)")
    return "[" + ", ".join(shown) + "]"


# --- three-valued logic -------------------------------------------------------------------------


def and3(a: Truth, b: Truth) -> Truth:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def or3(a: Truth, b: Truth) -> Truth:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def not3(a: Truth) -> Truth:
    return None if a is None else not a


def _kind(v: Value) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "num"
    return "text"


def compare(op: str, a: Value, b: Value) -> Truth:
    """SQL comparison; NULL on either side is UNKNOWN.

    Mixing kinds (text with numbers, booleans with numbers) is a type error in DataFusion; the
    machines never generate it, so the model refuses rather than guessing a coercion.
    """
    if a is None or b is None:
        return None
    if _kind(a) != _kind(b):
        raise ModelError(f"cannot compare {a!r} with {b!r}")
    # Text compares by code point, which equals DataFusion's UTF-8 byte order.
    if op == "=":
        return a == b
    if op in ("<>", "!="):
        return a != b
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    if op == ">=":
        return a >= b  # type: ignore[operator]
    raise ModelError(f"unknown comparison operator {op!r}")


def like(value: Value, pattern: str) -> Truth:
    """SQL LIKE: ``%`` any run, ``_`` one character, ``\\`` escapes; case-sensitive."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ModelError(f"LIKE on non-text value {value!r}")
    return _like_regex(pattern).fullmatch(value) is not None


def _like_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


# --- SQL rendering -----------------------------------------------------------------------------


def sql_literal(value: Value, ctype: ColType | None = None) -> str:
    """Render a value as a SQL literal of ``ctype`` (inferred from the value when omitted)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if ctype is ColType.TIMESTAMP:
        return f"to_timestamp_micros({value})"
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".eE") else text + ".0"
    return str(value)


def order_cmp(a: Value, b: Value, descending: bool = False) -> int:
    """Three-way ORDER BY comparison with DataFusion's default NULL placement.

    NULLs sort as the largest value: last for ASC, first for DESC.
    """
    if a is None or b is None:
        return ((a is None) - (b is None)) * (-1 if descending else 1)
    base = (a > b) - (a < b)  # type: ignore[operator]
    return -base if descending else base
