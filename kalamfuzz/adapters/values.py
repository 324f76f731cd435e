"""Schema columns and cell-value conversion shared by the SQL and live clients.

KalamDB encodes cells as JSON (HTTP_SQL.md §1.4, WEBSOCKET.md §4): Int64 (BIGINT, ``_seq``,
``COUNT(*)``) as JSON *strings*, TIMESTAMP/DATETIME as integer microseconds since the epoch, DATE as a
day number, TIME as integer microseconds, DECIMAL as a string, UUID as a string, BYTES as an array of
byte numbers, JSON as text. :func:`convert_value` turns a cell into the Python value a test compares.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

from kalamfuzz.errors import ProtocolError

__all__ = ["Column", "convert_row", "convert_value", "parse_schema", "redact_sql"]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DATE = dt.date(1970, 1, 1)
SYSTEM_COLUMNS = ("_seq", "_deleted")


@frozen
class Column:
    """One schema entry: ``{"name","data_type","index","flags"?}``.

    ``data_type`` is the KalamDataType name (``"BigInt"``, ``"Text"``, ``"Decimal"``,
    ``"Embedding"``, ...); ``type_args`` holds the parameters of object types
    (``(precision, scale)`` for Decimal, ``(dim,)`` for Embedding). ``flags`` is a subset of
    ``{"pk", "nn", "uq"}``.
    """

    name: str
    data_type: str
    index: int
    flags: frozenset[str] = frozenset()
    type_args: tuple[int, ...] = ()

    @property
    def is_pk(self) -> bool:
        return "pk" in self.flags

    @property
    def not_null(self) -> bool:
        return "nn" in self.flags


def parse_schema(raw: object) -> tuple[Column, ...]:
    """Parse a ``schema`` array (SQL result or subscription ack) ordered by ``index``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ProtocolError(f"schema must be a JSON array, got {type(raw).__name__}")
    cols: list[Column] = []
    for pos, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ProtocolError(f"schema entry {pos} has no name: {entry!r}")
        data_type, args = _parse_type(entry.get("data_type"))
        index = entry.get("index", pos)
        if not isinstance(index, int):
            raise ProtocolError(f"schema entry {entry['name']!r} has a non-integer index")
        flags = entry.get("flags") or []
        cols.append(
            Column(
                name=entry["name"],
                data_type=data_type,
                index=index,
                flags=frozenset(str(f) for f in flags),
                type_args=args,
            )
        )
    cols.sort(key=lambda c: c.index)
    return tuple(cols)


def _parse_type(raw: object) -> tuple[str, tuple[int, ...]]:
    if isinstance(raw, str):
        return raw, ()
    if isinstance(raw, dict) and len(raw) == 1:
        ((name, arg),) = raw.items()
        if isinstance(arg, int):
            return str(name), (arg,)
        if isinstance(arg, dict):
            return str(name), tuple(int(v) for v in arg.values() if isinstance(v, int))
        return str(name), ()
    raise ProtocolError(f"unknown data_type {raw!r}")


def convert_value(data_type: str, value: Any, *, column: str = "?") -> Any:
    """Convert one JSON cell of KalamDB type ``data_type`` to a Python value.

    Raises :class:`ProtocolError` when the cell's JSON type contradicts the wire format (for
    example a BIGINT sent as a JSON number, which loses precision above 2**53).
    """
    if value is None:
        return None
    try:
        conv = _CONVERTERS.get(data_type)
        if conv is None:
            return value
        return conv(value)
    except ProtocolError:
        raise
    except (TypeError, ValueError, ArithmeticError, OverflowError) as exc:
        raise ProtocolError(
            f"column {column!r}: cannot read {data_type} cell {value!r}: {exc}"
        ) from None


def _bigint(v: Any) -> int:
    if isinstance(v, str):
        return int(v)
    raise ProtocolError(f"BIGINT cell must be a JSON string, got {type(v).__name__} {v!r}")


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProtocolError(f"INT cell must be a JSON number, got {v!r}")
    return v


def _float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ProtocolError(f"floating-point cell must be a JSON number, got {v!r}")
    return float(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ProtocolError(f"BOOLEAN cell must be a JSON bool, got {v!r}")
    return v


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise ProtocolError(f"TEXT cell must be a JSON string, got {v!r}")
    return v


def _timestamp(v: Any) -> dt.datetime:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProtocolError(f"TIMESTAMP cell must be integer microseconds, got {v!r}")
    return EPOCH + dt.timedelta(microseconds=v)


def _date(v: Any) -> dt.date:
    return _EPOCH_DATE + dt.timedelta(days=_int(v))


def _time(v: Any) -> dt.time:
    us = _int(v)
    return (dt.datetime.min + dt.timedelta(microseconds=us)).time()


def _json(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def _bytes(v: Any) -> bytes:
    if isinstance(v, list):
        return bytes(v)
    raise ProtocolError(f"BYTES cell must be an array of byte numbers, got {v!r}")


def _uuid(v: Any) -> uuid.UUID:
    return uuid.UUID(_text(v))


def _decimal(v: Any) -> decimal.Decimal:
    if isinstance(v, str | int):
        return decimal.Decimal(v)
    raise ProtocolError(f"DECIMAL cell must be a JSON string, got {v!r}")


def _embedding(v: Any) -> list[float]:
    if not isinstance(v, list):
        raise ProtocolError(f"EMBEDDING cell must be an array, got {v!r}")
    return [float(x) for x in v]


_CONVERTERS: dict[str, Any] = {
    "Boolean": _bool,
    "SmallInt": _int,
    "Int": _int,
    "BigInt": _bigint,
    "Float": _float,
    "Double": _float,
    "Text": _text,
    "Timestamp": _timestamp,
    "DateTime": _timestamp,
    "Date": _date,
    "Time": _time,
    "Json": _json,
    "Bytes": _bytes,
    "Uuid": _uuid,
    "Decimal": _decimal,
    "Embedding": _embedding,
    "File": _json,
}


def convert_row(
    row: Mapping[str, Any], types: Mapping[str, str], *, seq_as_int: bool = True
) -> dict[str, Any]:
    """Convert a row object (live-query rows) by column name.

    ``_seq`` is always a BIGINT (JSON string) even when the schema does not list it; ``_deleted`` is
    a bool. Columns missing from ``types`` are returned unchanged.
    """
    out: dict[str, Any] = {}
    for name, value in row.items():
        data_type = types.get(name)
        if data_type is None and name == "_seq" and seq_as_int:
            data_type = "BigInt"
        out[name] = convert_value(data_type, value, column=name) if data_type else value
    return out


def convert_positional(
    columns: Sequence[Column], row: Sequence[Any], *, statement: str | None = None
) -> tuple[Any, ...]:
    """Convert one positional row (SQL results) against its schema."""
    if len(row) != len(columns):
        raise ProtocolError(
            f"row has {len(row)} cells but the schema has {len(columns)} columns",
            statement=statement,
        )
    return tuple(
        convert_value(c.data_type, v, column=c.name) for c, v in zip(columns, row, strict=True)
    )


_PASSWORD_RE = re.compile(r"(PASSWORD\s+)('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\S+)", re.IGNORECASE)


def redact_sql(statement: str) -> str:
    """Hide passwords in SQL text (``CREATE/ALTER USER ... PASSWORD '...'``) for logs and errors."""
    return _PASSWORD_RE.sub(r"\1'***'", statement)


_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with control characters and lone surrogates written as ``\\xNN`` escapes: a
    request that carried a NUL on purpose must still go into a transcript, a report and a
    regression file's comments (Python refuses source code with a NUL in it)."""

    def escaped(m: re.Match[str]) -> str:
        code = ord(m.group())
        return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"

    return _UNPRINTABLE.sub(escaped, text)
