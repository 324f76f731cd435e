"""Async core, manual paging, fault injection and observation conversion against the server."""

from __future__ import annotations

import asyncio

import pytest

from kalamfuzz.adapters import (
    AsyncLiveClient,
    SqlClient,
    Target,
    block_directory,
    observe,
)


def test_async_core_subscribe(target: Target, admin: SqlClient, ns: str) -> None:
    admin.create_table(f"{ns}.a", "id INT PRIMARY KEY", table_type="SHARED")
    admin.sql(f"INSERT INTO {ns}.a (id) VALUES (1), (2), (3)")

    async def run() -> list[int]:
        client = AsyncLiveClient(target.url, admin.token)
        await client.connect()
        sub = await client.subscribe(f"SELECT * FROM {ns}.a", batch_size=2)
        for _ in range(200):
            if sub.ready:
                break
            await asyncio.sleep(0.01)
        await client.close()
        assert not client.connected
        return [r["id"] for r in sub.snapshot_rows]

    assert asyncio.run(run()) == [1, 2, 3]


def test_manual_paging(target: Target, admin: SqlClient, ns: str) -> None:
    admin.create_table(f"{ns}.mp", "id INT PRIMARY KEY", table_type="SHARED")
    admin.sql(f"INSERT INTO {ns}.mp (id) VALUES (1), (2), (3)")
    with target.live(admin) as live:
        sub = live.subscribe(f"SELECT * FROM {ns}.mp", batch_size=2, auto_page=False, wait=False)
        sub.wait_for(lambda s: len(s.batches) == 1)
        assert not sub.ready and sub.batches[0].control.has_more
        sub.request_next_batch()
        sub.wait_ready()
        assert [len(b.rows) for b in sub.batches] == [2, 1]


def test_flush_into_blocked_storage_fails_then_succeeds(
    target: Target, admin: SqlClient, ns: str
) -> None:
    reason = target.skip_reason("data_dir")
    if reason:
        pytest.skip(reason)
    table = f"{ns}.blk"
    admin.create_table(table, "id INT PRIMARY KEY", table_type="SHARED")
    admin.sql(f"INSERT INTO {table} (id) VALUES (1), (2)")
    with block_directory(target.storage_dir / ns):
        job = admin.flush(table, timeout=30)
        assert job is not None and job.status == "failed" and job.message
    retry = admin.flush(table, timeout=30)
    assert retry is not None and retry.status == "completed"
    after = observe.cold_scope(target.storage_dir / ns / "blk")
    assert after.other_files == () and after.manifest is not None
    assert [p.rows is not None for p in after.parquet] == [True]
    assert admin.query_all(f"SELECT id FROM {table}", "id").column("id") == [1, 2]


def test_observations(
    target: Target, admin: SqlClient, alice: tuple[str, SqlClient], ns: str
) -> None:
    table = f"{ns}.obs"
    admin.create_table(table, "id BIGINT PRIMARY KEY, ts TIMESTAMP", table_type="USER")
    ok = observe.statement(admin, f"INSERT INTO {table} (id, ts) VALUES (1, 5)", as_user=alice[0])
    assert ok.ok and ok.row_count == 1
    bad = observe.statement(admin, f"INSERT INTO {table} (id, ts) VALUES (1, 5)", as_user=alice[0])
    assert not bad.ok and (bad.status, bad.code) == (400, "SQL_EXECUTION_ERROR")
    q = observe.query(alice[1], f"SELECT id, ts FROM {table}")
    assert q.ok and q.columns == ("id", "ts") and q.rows == (("1", 5),)
    flush = observe.statement(admin, f"STORAGE FLUSH TABLE {table}")
    assert flush.ok and flush.job_id is not None
    job = admin.wait_job(flush.job_id)
    assert observe.job(job).status == "completed"
    with target.live(alice[1]) as live:
        sub = live.subscribe(f"SELECT * FROM {table}")
        o = observe.subscription(sub)
        assert o.acked and o.batches[-1].rows[0]["id"] == "1" and o.error_code is None
    if target.skip_reason("data_dir"):
        return
    scope = observe.cold_scope(target.storage_dir / ns / "obs" / alice[0])
    assert scope.manifest is not None and scope.manifest.segments[0].row_count == 1
    assert scope.parquet[0].rows is not None and scope.parquet[0].rows[0]["ts"] == 5
    listing = observe.storage_listing([target.storage_dir / ns])
    assert any(f.endswith("manifest.json") for f in listing.files)
