"""LiveClient / Subscription against a launched server (sim by default)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kalamfuzz.adapters import LiveClient, SqlClient, Target
from kalamfuzz.errors import ConnectionDropped, SubscriptionError


def make_table(admin: SqlClient, table: str, rows: int, table_type: str = "SHARED") -> None:
    admin.create_table(table, "id INT PRIMARY KEY, body TEXT, n INT", table_type=table_type)
    if rows:
        values = ", ".join(f"({i}, 'b{i}', {i})" for i in range(rows))
        admin.sql(f"INSERT INTO {table} (id, body, n) VALUES {values}")


def expected_rows(admin: SqlClient, table: str, where: str = "") -> list[dict[str, object]]:
    rows = admin.query_all(f"SELECT * FROM {table}{where}", "id").dicts()
    return sorted(rows, key=lambda r: r["_seq"])  # type: ignore[arg-type,return-value]


@pytest.fixture
def live(target: Target, admin: SqlClient) -> Iterator[LiveClient]:
    client = target.live(admin)
    yield client
    client.close()


@pytest.mark.parametrize("batch_size", [1, 7, 100])
def test_snapshot_paging(admin: SqlClient, live: LiveClient, ns: str, batch_size: int) -> None:
    table = f"{ns}.snap"
    make_table(admin, table, 20)
    sub = live.subscribe(f"SELECT * FROM {table}", batch_size=batch_size)
    sizes = [len(b.rows) for b in sub.batches]
    full, rest = divmod(20, batch_size)
    want = [batch_size] * full + ([rest] if rest else [])
    assert sizes == want
    controls = [b.control for b in sub.batches]
    assert [c.batch_num for c in controls] == list(range(len(controls)))
    assert all(c.has_more for c in controls[:-1]) and not controls[-1].has_more
    assert controls[-1].status == "ready"
    assert all(
        c.status == ("loading" if i == 0 else "loading_batch") for i, c in enumerate(controls[:-1])
    )
    for b in sub.batches:
        if b.rows:
            assert b.control.last_seq_id == b.rows[-1]["_seq"]
    assert sub.ack is not None and sub.ack_control is not None
    assert sub.ack_control.has_more == controls[0].has_more
    assert sub.snapshot_rows == expected_rows(admin, table)
    assert sub.current_rows() == expected_rows(admin, table)
    assert sub.max_seq == max(r["_seq"] for r in sub.snapshot_rows)
    assert [m.type for m in sub.messages][:2] == ["subscription_ack", "initial_data_batch"]
    assert all(
        isinstance(r["_seq"], int) and isinstance(raw["_seq"], str)
        for b in sub.batches
        for r, raw in zip(b.rows, b.raw_rows, strict=True)
    )


def test_changes_insert_update_delete_and_materialisation(
    admin: SqlClient, live: LiveClient, ns: str
) -> None:
    table = f"{ns}.chg"
    make_table(admin, table, 3)
    sub = live.subscribe(f"SELECT * FROM {table}", batch_size=2)
    admin.sql(f"INSERT INTO {table} (id, body, n) VALUES (10, 'new', 1)")
    admin.sql(f"UPDATE {table} SET body = 'upd', n = NULL WHERE id = 0")
    admin.sql(f"DELETE FROM {table} WHERE id = 1")
    changes = sub.wait_changes(3)
    assert [c.change_type for c in changes] == ["insert", "update", "delete"]
    ins, upd, dele = changes
    assert ins.rows[0]["id"] == 10 and ins.rows[0]["body"] == "new" and ins.old_values == ()
    assert upd.rows[0]["body"] == "upd" and "n" not in upd.rows[0]
    assert upd.old_values[0]["body"] == "b0"
    assert dele.rows == () and dele.old_values[0]["id"] == 1
    assert ins.seq is not None and upd.seq is not None and dele.seq is not None
    assert ins.seq < upd.seq < dele.seq
    assert sub.max_seq == dele.seq
    sub.wait_quiet(0.2)
    assert sub.current_rows() == expected_rows(admin, table)
    current = {r["id"]: r for r in sub.current_rows()}
    assert current[0]["n"] is None and 1 not in current


def test_multiplexed_filtered_subscriptions(admin: SqlClient, live: LiveClient, ns: str) -> None:
    table = f"{ns}.mux"
    make_table(admin, table, 4)
    low = live.subscribe(f"SELECT id, body FROM {table} WHERE n < 2")
    high = live.subscribe(f"SELECT id, body FROM {table} WHERE n >= 2")
    assert len(live.subscriptions) >= 2
    assert sorted(r["id"] for r in low.snapshot_rows) == [0, 1]
    assert sorted(r["id"] for r in high.snapshot_rows) == [2, 3]
    assert set(low.snapshot_rows[0]) == {"id", "body", "_seq"}
    admin.sql(f"INSERT INTO {table} (id, body, n) VALUES (20, 'hi', 9)")
    high.wait_changes(1)
    low.wait_quiet(0.3)
    assert low.changes == () and high.changes[0].rows[0]["id"] == 20


def test_snapshot_false_and_last_rows(admin: SqlClient, live: LiveClient, ns: str) -> None:
    table = f"{ns}.opts"
    make_table(admin, table, 5)
    bare = live.subscribe(f"SELECT * FROM {table}", snapshot=False)
    assert bare.ready and bare.batches == () and bare.options is None
    tail = live.subscribe(f"SELECT * FROM {table}", last_rows=2)
    assert [r["id"] for r in tail.snapshot_rows] == [3, 4] and len(tail.batches) == 1
    admin.sql(f"INSERT INTO {table} (id, body, n) VALUES (9, 'x', 9)")
    bare.wait_changes(1)
    assert bare.changes[0].rows[0]["id"] == 9


def test_subscription_errors(live: LiveClient, ns: str, admin: SqlClient) -> None:
    with pytest.raises(SubscriptionError) as bad:
        live.subscribe("SELECT * FROM nonamespace")
    assert bad.value.code == "INVALID_SQL"
    with pytest.raises(SubscriptionError) as missing:
        live.subscribe(f"SELECT * FROM {ns}.does_not_exist")
    assert missing.value.code == "NOT_FOUND"
    make_table(admin, f"{ns}.ok", 1)
    assert live.subscribe(f"SELECT * FROM {ns}.ok").ready  # the socket survived the errors


def test_user_isolation_and_execute_as(
    target: Target,
    admin: SqlClient,
    alice: tuple[str, SqlClient],
    bob: tuple[str, SqlClient],
    ns: str,
) -> None:
    table = f"{ns}.priv"
    admin.create_table(table, "id INT PRIMARY KEY, body TEXT", table_type="USER")
    admin.execute_as(alice[0], f"INSERT INTO {table} (id, body) VALUES (1, 'alice')")
    with target.live(alice[1]) as a_live, target.live(bob[1]) as b_live:
        assert a_live.user == alice[0]
        a_sub = a_live.subscribe(f"SELECT * FROM {table}")
        b_sub = b_live.subscribe(f"SELECT * FROM {table}")
        assert [r["body"] for r in a_sub.snapshot_rows] == ["alice"] and b_sub.snapshot_rows == []
        admin.execute_as(bob[0], f"INSERT INTO {table} (id, body) VALUES (2, 'bob')")
        b_sub.wait_changes(1)
        a_sub.wait_quiet(0.3)
        assert a_sub.changes == () and b_sub.changes[0].rows[0]["body"] == "bob"


def test_unsubscribe_and_system_live(admin: SqlClient, live: LiveClient, ns: str) -> None:
    make_table(admin, f"{ns}.sl", 1)
    sub = live.subscribe(f"SELECT * FROM {ns}.sl", batch_size=5)
    rows = [r for r in admin.live_queries() if r.subscription_id == sub.id]
    assert len(rows) == 1 and rows[0].table_name == "sl" and rows[0].namespace_id == ns
    sub.unsubscribe()
    assert not sub.active
    assert not [r for r in admin.live_queries() if r.subscription_id == sub.id]
    admin.sql(f"INSERT INTO {ns}.sl (id, body, n) VALUES (5, 'late', 5)")
    sub.wait_quiet(0.3)
    assert sub.changes == ()


def test_resume_after_dropped_connection(admin: SqlClient, live: LiveClient, ns: str) -> None:
    table = f"{ns}.res"
    make_table(admin, table, 5)
    sub = live.subscribe(f"SELECT * FROM {table}", batch_size=2)
    admin.sql(f"INSERT INTO {table} (id, body, n) VALUES (5, 'before drop', 5)")
    sub.wait_changes(1)
    seen = sub.max_seq
    live.drop()
    assert not live.connected and sub.dropped and live.close_code == 1006
    with pytest.raises(ConnectionDropped):
        sub.wait_changes(99, timeout=1)
    admin.sql(f"INSERT INTO {table} (id, body, n) VALUES (6, 'during gap', 6)")
    admin.sql(f"UPDATE {table} SET body = 'changed in gap' WHERE id = 0")
    resumed = sub.resume(batch_size=1)
    assert live.connected and resumed.from_seq == seen and resumed.resumed_from is sub
    assert resumed.options == {"batch_size": 1, "from": seen}
    got = sorted(r["id"] for r in resumed.snapshot_rows)
    assert got == [0, 6]  # exactly the rows written after the last seen _seq
    assert all(r["_seq"] > seen for r in resumed.snapshot_rows)  # type: ignore[operator]
    admin.sql(f"INSERT INTO {table} (id, body, n) VALUES (7, 'after resume', 7)")
    resumed.wait_changes(1)
    resumed.wait_quiet(0.2)
    assert resumed.current_rows() == expected_rows(admin, table)


def test_message_auth_and_gzip_frames(target: Target, admin: SqlClient, ns: str) -> None:
    table = f"{ns}.gz"
    make_table(admin, table, 30)
    with LiveClient(target.url, admin, auth="message", compress=True) as gz:
        sub = gz.subscribe(f"SELECT * FROM {table}", batch_size=30)
        assert len(sub.snapshot_rows) == 30
        assert any(m.binary for m in sub.messages)  # ≥512-byte frames arrive gzip-compressed
    with LiveClient(target.url, admin) as plain:
        sub = plain.subscribe(f"SELECT * FROM {table}", batch_size=30)
        assert not any(m.binary for m in sub.messages)  # ?compress=false: text only
