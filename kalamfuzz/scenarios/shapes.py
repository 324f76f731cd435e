"""Table shapes and row makers the scenarios share (the seed's suggested columns, in the
model's types: SMALLINT is INT, JSON and BINARY are TEXT)."""

from __future__ import annotations

from kalamfuzz.model.catalog import Column
from kalamfuzz.model.values import ColType, Value
from kalamfuzz.model.where import And, Cmp, CmpOp, Col, Lit, Pred

#: 2026-01-01T00:00:00Z in microseconds: timestamps of the scenarios' rows start here.
T0 = 1_767_225_600_000_000
MINUTE = 60_000_000

ID = Column("id", ColType.BIGINT, nullable=False, primary_key=True)


def columns(*spec: tuple[str, ColType]) -> tuple[Column, ...]:
    return (ID, *(Column(name, t) for name, t in spec))


Row = dict[str, Value]

CONVERSATIONS = columns(("title", ColType.TEXT), ("created_at", ColType.TIMESTAMP))
MESSAGES = columns(
    ("conversation_id", ColType.BIGINT),
    ("role_id", ColType.TEXT),
    ("content", ColType.TEXT),
    ("metadata", ColType.TEXT),
    ("created_at", ColType.TIMESTAMP),
)
TYPING = columns(
    ("conversation_id", ColType.BIGINT),
    ("user_id", ColType.TEXT),
    ("event_type", ColType.TEXT),
    ("created_at", ColType.TIMESTAMP),
)
#: The offline-sync items: the seed's ten columns.
ITEMS = columns(
    ("kind", ColType.TEXT),
    ("title", ColType.TEXT),
    ("body", ColType.TEXT),
    ("tags", ColType.TEXT),
    ("priority", ColType.INT),
    ("is_done", ColType.BOOLEAN),
    ("updated_at", ColType.TIMESTAMP),
    ("device_id", ColType.TEXT),
    ("meta", ColType.TEXT),
)
TELEMETRY = columns(
    ("device_id", ColType.TEXT),
    ("ts", ColType.TIMESTAMP),
    ("temp", ColType.DOUBLE),
    ("humidity", ColType.DOUBLE),
    ("pressure", ColType.DOUBLE),
    ("battery", ColType.DOUBLE),
    ("is_charging", ColType.BOOLEAN),
    ("firmware", ColType.TEXT),
    ("payload", ColType.TEXT),
)
#: A small general shape: a owner-chosen group, a text, a number.
SIMPLE = columns(("grp", ColType.BIGINT), ("body", ColType.TEXT), ("qty", ColType.INT))


def message(i: int, conversation: int, role: str = "user", content: str | None = None) -> Row:
    return {
        "id": i,
        "conversation_id": conversation,
        "role_id": role,
        "content": content if content is not None else f"message {i}",
        "metadata": None if i % 3 else '{"lang":"en"}',
        "created_at": T0 + i * MINUTE,
    }


def item(i: int, device: str = "phone") -> Row:
    return {
        "id": i,
        "kind": ("note", "task", "message")[i % 3],
        "title": f"item {i}",
        "body": "x" * (i % 17),
        "tags": f"t{i % 5},t{i % 7}",
        "priority": i % 4,
        "is_done": i % 2 == 0,
        "updated_at": T0 + i * MINUTE,
        "device_id": device,
        "meta": None if i % 4 else '{"v":1}',
    }


def telemetry(i: int) -> Row:
    """Deterministic readings: every 50th row is an anomaly (hot or nearly empty)."""
    return {
        "id": i,
        "device_id": f"dev-{i % 10}",
        "ts": T0 + i * 1_000_000,
        "temp": 45.5 if i % 50 == 0 else 20.0 + (i % 15),
        "humidity": 30.0 + (i % 40),
        "pressure": 1000.0 + (i % 25),
        "battery": 5.0 if i % 50 == 25 else 50.0 + (i % 50),
        "is_charging": i % 6 == 0,
        "firmware": f"1.{i % 3}",
        "payload": f"p{i}",
    }


def simple(i: int, grp: int = 1, body: str | None = None) -> Row:
    return {"id": i, "grp": grp, "body": body if body is not None else f"row {i}", "qty": i % 9}


def chunks(ids: range, size: int) -> list[range]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def cmp(column: str, op: CmpOp, value: Value, ctype: ColType | None = None) -> Cmp:
    return Cmp(op, Col(column), Lit(value, ctype))


def eq(column: str, value: Value) -> Cmp:
    return cmp(column, "=", value)


def both(*preds: Pred) -> Pred:
    out = preds[0]
    for p in preds[1:]:
        out = And(out, p)
    return out
