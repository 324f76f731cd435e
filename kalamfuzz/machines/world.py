"""The fixed world every machine starts from: users, storages and table shapes.

The world is not drawn: a fixed cast keeps shrunk programs short and readable, and Hypothesis
spends its choices on what happens to the world instead. Names here are logical; the driver
maps them to names unique to one run (``alice`` -> ``kf_3f9a_alice``) so runs can share a server.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from attrs import frozen

from kalamfuzz.model.catalog import AccessLevel, Column, Role, TableType
from kalamfuzz.model.values import ColType, Value

#: Logical user -> role. ``root`` is the target's admin and always exists.
USERS: dict[str, Role] = {
    "alice": Role.USER,
    "bob": Role.USER,
    "svc": Role.SERVICE,
    "dba": Role.DBA,
}
#: Who acts in data rules: two tenants, a service writing on their behalf, an admin.
ACTORS = ("alice", "bob", "svc", "dba")
TENANTS = ("alice", "bob")

#: A second storage for routing, and a spare one whose directory the jobs machine breaks.
STORAGES = ("second", "spare")

#: Every table starts with these columns; DDL rules add and drop the non-key ones.
COLUMNS = (
    Column("id", ColType.INT, nullable=False, primary_key=True),
    Column("n", ColType.BIGINT),
    Column("s", ColType.TEXT),
    Column("b", ColType.BOOLEAN),
)
#: Primary keys are drawn from a small range so that rules collide on the same rows.
KEYS = range(0, 8)
#: Keys of the rows seeded before the rules run: outside KEYS, so seeded rows never make a
#: rule's insert a duplicate, but inside the range predicates draw from.
SEED_KEYS = range(8, 11)
#: The first key of a table's background rows (``Driver.background_rows``): far from the keys
#: rules draw, so no rule's insert collides with one, while range predicates still reach them.
BACKGROUND_KEYS = 1000


#: Background rows go to the server in statements of this many (its row cap).
BACKGROUND_BATCH = 1000


def background(
    kind: TableType, rows: int, tenants: Sequence[str] = TENANTS
) -> Iterator[tuple[str, tuple[dict[str, Value], ...]]]:
    """A table's ``rows`` background rows per scope, as (logical owner, statement's rows): the
    ``tenants``' partitions of a per-user table, root's of a SHARED one, none in a STREAM
    table (they would expire)."""
    if kind is TableType.STREAM:
        return
    keys = range(BACKGROUND_KEYS, BACKGROUND_KEYS + rows)
    for owner in tenants if kind.per_user else ("root",):
        for i in range(0, rows, BACKGROUND_BATCH):
            yield (
                owner,
                tuple(
                    {"id": k, "n": k, "s": f"row {k}", "b": k % 2 == 0}
                    for k in keys[i : i + BACKGROUND_BATCH]
                ),
            )


#: STREAM rows expire after this many seconds; the ``pause`` rule waits past it.
STREAM_TTL_SECONDS = 1


@frozen
class TableSpec:
    name: str
    type: TableType
    storage: str = "local"
    access: AccessLevel | None = None
    ttl_seconds: int | None = None


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("notes", TableType.USER),
        TableSpec("board", TableType.SHARED, access=AccessLevel.PUBLIC),
        TableSpec("vault", TableType.SHARED, access=AccessLevel.PRIVATE),
        TableSpec("events", TableType.STREAM, ttl_seconds=STREAM_TTL_SECONDS),
        TableSpec("routed", TableType.USER, storage="second"),
        TableSpec("fragile", TableType.SHARED, storage="spare", access=AccessLevel.PUBLIC),
    )
}
