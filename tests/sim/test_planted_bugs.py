"""Every planted bug (kalamfuzz/sim/bugs.py) is observable when on and absent when off.

Each test runs one scenario twice: against a plain sim (`off`, asserting docs/contract.md) and
against a sim with just that bug on (`on`, asserting the specific deviation). The plain sim is
shared by the module; tests isolate themselves in their own namespaces, users and storages.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pyarrow.parquet as pq
import pytest

from kalamfuzz.sim.bugs import BUGS
from kalamfuzz.sim.config import SimConfig

from .conftest import Sim, live

PW = "pw-for-tests-1"
ON_OFF = pytest.mark.parametrize("on", [False, True], ids=["off", "on"])
_names = itertools.count()

MakeSim = Callable[..., Sim]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    s = Sim(tmp_path_factory.mktemp("plain")).start()
    yield s
    s.close()


@pytest.fixture
def target(plain: Sim, tmp_path: Path) -> Iterator[MakeSim]:
    """target(bug, on) -> the shared plain sim (off) or a fresh sim with only `bug` on.

    fresh=True gives a fresh process for the off side too (for tests that kill it); so does
    ``extra`` (lines for the sim's config file, e.g. a slow flush).
    """
    started: list[Sim] = []

    def make(bug: str, on: bool, *, fresh: bool = False, extra: str = "") -> Sim:
        if not on and not fresh and not extra:
            return plain
        s = Sim(tmp_path, bugs=(bug,) if on else (), extra=extra).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.close()


def new_ns(sim: Sim) -> str:
    name = f"pb{next(_names)}_{os.getpid()}"
    sim.sql(f"CREATE NAMESPACE {name}")
    return name


def shared_table(sim: Sim, ns: str, name: str = "t", options: str = "") -> str:
    sim.sql(f"CREATE SHARED TABLE {ns}.{name} (id INT PRIMARY KEY, v TEXT){options}")
    return f"{ns}.{name}"


def user_table(sim: Sim, ns: str, name: str = "t") -> str:
    sim.sql(f"CREATE USER TABLE {ns}.{name} (id INT PRIMARY KEY, v TEXT)")
    return f"{ns}.{name}"


def users(sim: Sim, ns: str, *names: str) -> list[str]:
    out = [f"{ns}_{n}" for n in names]
    for u in out:
        sim.create_user(u)
    return out


def as_user(user: str, sql: str) -> str:
    return f"EXECUTE AS USER '{user}' ({sql})"


def ids(rows: list[list[Any]]) -> list[int]:
    return sorted(int(r[0]) for r in rows)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def changes(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == "change"]


def watched(sim: Sim, t: str, *statements: str) -> list[dict[str, Any]]:
    """The changes a subscriber to all of ``t`` receives while ``statements`` run."""

    async def scenario() -> list[dict[str, Any]]:
        async with live(sim) as conn:
            await conn.subscribe("s", f"SELECT * FROM {t}")
            for sql in statements:
                sim.sql(sql)
            return changes(await conn.quiet())

    return run(scenario())


def snapshot_rows(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert messages[0]["type"] == "subscription_ack", messages[0]
    return [r for m in messages[1:] for r in m["rows"]]


def scope_files(directory: Path) -> tuple[dict[str, Any] | None, list[Path]]:
    manifest = directory / "manifest.json"
    data = json.loads(manifest.read_text()) if manifest.exists() else None
    return data, sorted(directory.glob("batch-*.parquet")) if directory.is_dir() else []


# ---------------------------------------------------------------------------- isolation


@ON_OFF
def test_execute_as_wrong_scope(target: MakeSim, on: bool) -> None:
    sim = target("execute_as_wrong_scope", on)
    ns = new_ns(sim)
    t = user_table(sim, ns)
    (u,) = users(sim, ns, "u")
    r = sim.sql(as_user(u, f"INSERT INTO {t} (id, v) VALUES (1, 'a')"))
    assert r[0]["row_count"] == 1
    in_u = sim.rows(as_user(u, f"SELECT id FROM {t}"))
    in_root = sim.rows(f"SELECT id FROM {t}")
    if on:
        assert (in_u, ids(in_root)) == ([], [1])
    else:
        assert (ids(in_u), in_root) == ([1], [])


@ON_OFF
def test_select_scope_leak(target: MakeSim, on: bool) -> None:
    sim = target("select_scope_leak", on)
    ns = new_ns(sim)
    t = user_table(sim, ns)
    a, b = users(sim, ns, "a", "b")
    sim.sql(as_user(a, f"INSERT INTO {t} (id, v) VALUES (1, 'a')"))
    sim.sql(as_user(b, f"INSERT INTO {t} (id, v) VALUES (2, 'b')"))
    assert ids(sim.rows(f"SELECT id FROM {t} WHERE id >= 1", a, PW)) == [1]
    seen = ids(sim.rows(f"SELECT id FROM {t} WHERE id = 1 OR id = 2", a, PW))
    assert seen == ([1, 2] if on else [1])


@ON_OFF
def test_live_cross_user(target: MakeSim, on: bool) -> None:
    sim = target("live_cross_user", on)
    ns = new_ns(sim)
    t = user_table(sim, ns)
    a, b = users(sim, ns, "a", "b")

    async def scenario() -> list[dict[str, Any]]:
        async with live(sim, a, PW) as conn:
            messages = await conn.subscribe("s", f"SELECT * FROM {t}")
            assert snapshot_rows(messages) == []
            sim.sql(as_user(b, f"INSERT INTO {t} (id, v) VALUES (2, 'b')"))
            sim.sql(as_user(a, f"INSERT INTO {t} (id, v) VALUES (1, 'a')"))
            return changes(await conn.quiet())

    got = [(c["change_type"], c["rows"][0]["id"]) for c in run(scenario())]
    assert got == ([("insert", 2), ("insert", 1)] if on else [("insert", 1)])


# ---------------------------------------------------------------------------- tier equivalence


@ON_OFF
def test_flush_drops_concurrent_writes(target: MakeSim, on: bool) -> None:
    """Single-row inserts race a flush of a few thousand rows (the Parquet write runs off-loop)."""
    sim = target("flush_drops_concurrent_writes", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    lost: list[int] = []
    for rnd in range(6):
        acked = []
        base = rnd * 100_000
        sim.sql(
            f"INSERT INTO {t} (id, v) VALUES "
            + ",".join(f"({base + i}, 'bulk')" for i in range(3000))
        )
        message = sim.sql(f"STORAGE FLUSH TABLE {t}")[0]["message"]
        job = message.split("Job ID: ")[1].strip()
        status = None
        for i in range(50_000, 52_000):
            assert (
                sim.sql(f"INSERT INTO {t} (id, v) VALUES ({base + i}, 'racer')")[0]["row_count"]
                == 1
            )
            acked.append(base + i)
            rows = sim.rows(f"SELECT status FROM system.jobs WHERE job_id = '{job}'")
            if rows[0][0] in ("completed", "failed"):
                status = rows[0][0]
                break
        assert status == "completed"
        visible = ids(
            sim.rows(
                f"SELECT id FROM {t} WHERE v = 'racer' AND id >= {base} AND id < {base + 100_000}"
            )
        )
        lost = sorted(set(acked) - set(visible))
        if lost:
            break
        assert sim.rows(f"SELECT COUNT(*) FROM {t} WHERE v = 'bulk'") == [[str(3000 * (rnd + 1))]]
    if on:
        assert lost, "no acknowledged write raced the flush's Parquet write in 6 rounds"
    else:
        assert lost == []


@ON_OFF
def test_cold_shadows_hot(target: MakeSim, on: bool) -> None:
    sim = target("cold_shadows_hot", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'old')")
    assert sim.flush(t)[0] == "completed"
    assert sim.sql(f"UPDATE {t} SET v = 'new' WHERE id = 1")[0]["row_count"] == 1
    assert sim.rows(f"SELECT v FROM {t} WHERE id = 1") == [["old" if on else "new"]]


@ON_OFF
def test_flush_drops_tombstones(target: MakeSim, on: bool) -> None:
    sim = target("flush_drops_tombstones", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b')")
    assert sim.flush(t)[0] == "completed"
    sim.sql(f"DELETE FROM {t} WHERE id = 1")
    assert sim.flush(t)[0] == "completed"  # nothing live to write: the tombstone stays hot
    assert ids(sim.rows(f"SELECT id FROM {t}")) == [2]
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (3, 'c')")
    assert sim.flush(t)[0] == "completed"  # writes 3; with the bug it also drops 1's tombstone
    assert ids(sim.rows(f"SELECT id FROM {t}")) == ([1, 2, 3] if on else [2, 3])
    _, files = scope_files(sim.data / "storage" / ns / "t")
    cold = [[(r["id"], r["_deleted"]) for r in pq.read_table(f).to_pylist()] for f in files]
    assert cold == [[(1, False), (2, False)], [(3, False)]]  # tombstones never reach Parquet


# ---------------------------------------------------------------------------- cold artifacts


@ON_OFF
def test_manifest_row_count(target: MakeSim, on: bool) -> None:
    sim = target("manifest_row_count", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    sim.sql(f"DELETE FROM {t} WHERE id = 3")  # a tombstone of a key never flushed: dropped at flush
    assert sim.flush(t)[0] == "completed"
    manifest, files = scope_files(sim.data / "storage" / ns / "t")
    assert manifest is not None and [f.name for f in files] == ["batch-0.parquet"]
    batch = pq.read_table(files[0])
    assert sorted(batch.column("id").to_pylist()) == [1, 2]
    (segment,) = manifest["segments"]
    assert segment["status"] == "committed"
    assert (segment["min_seq"], segment["max_seq"]) == (
        min(batch.column("_seq").to_pylist()),
        max(batch.column("_seq").to_pylist()),
    )
    assert segment["row_count"] == (3 if on else 2)


@ON_OFF
def test_empty_batch_file(target: MakeSim, on: bool) -> None:
    sim = target("empty_batch_file", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    # A live cold row keeps the table non-empty, so no cold cleanup removes what the flush wrote.
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'a')")
    assert sim.flush(t)[0] == "completed"
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (2, 'b')")
    sim.sql(f"DELETE FROM {t} WHERE id = 2")
    assert sim.flush(t)[0] == "completed"
    manifest, files = scope_files(sim.data / "storage" / ns / "t")
    assert manifest is not None
    if on:
        assert [f.name for f in files] == ["batch-0.parquet", "batch-1.parquet"]
        assert pq.read_table(files[1]).num_rows == 0
        assert manifest["segments"][1]["row_count"] == 0
    else:
        assert [f.name for f in files] == ["batch-0.parquet"]
        assert len(manifest["segments"]) == 1
    assert ids(sim.rows(f"SELECT id FROM {t}")) == [1]


# ---------------------------------------------------------------------------- subscriptions


@ON_OFF
def test_snapshot_includes_deleted(target: MakeSim, on: bool) -> None:
    sim = target("snapshot_includes_deleted", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b')")
    sim.sql(f"DELETE FROM {t} WHERE id = 2")

    async def scenario() -> list[dict[str, Any]]:
        async with live(sim) as conn:
            return snapshot_rows(await conn.subscribe("s", f"SELECT * FROM {t}"))

    got = [(r["id"], r["_deleted"]) for r in run(scenario())]
    assert got == ([(1, False), (2, True)] if on else [(1, False)])


@ON_OFF
def test_batch_has_more_exact(target: MakeSim, on: bool) -> None:
    sim = target("batch_has_more_exact", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')")

    async def scenario() -> list[dict[str, Any]]:
        async with live(sim) as conn:
            return await conn.subscribe("s", f"SELECT * FROM {t}", batch_size=2)

    messages = run(scenario())
    pages = [(len(m["rows"]), m["batch_control"]["has_more"]) for m in messages[1:]]
    assert [r["id"] for r in snapshot_rows(messages)] == [1, 2, 3, 4]
    assert pages == ([(2, True), (2, True), (0, False)] if on else [(2, True), (2, False)])


@ON_OFF
def test_live_multi_insert_first_only(target: MakeSim, on: bool) -> None:
    sim = target("live_multi_insert_first_only", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    inserted = watched(sim, t, f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    got = [(c["change_type"], c["rows"][0]["id"]) for c in inserted]
    assert got == ([("insert", 1)] if on else [("insert", 1), ("insert", 2), ("insert", 3)])


@ON_OFF
def test_live_update_old_values(target: MakeSim, on: bool) -> None:
    sim = target("live_update_old_values", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'before')")
    (change,) = watched(sim, t, f"UPDATE {t} SET v = 'after' WHERE id = 1")
    assert change["change_type"] == "update"
    assert change["old_values"][0]["v"] == "before"
    assert change["rows"][0]["id"] == 1
    assert change["rows"][0]["v"] == ("before" if on else "after")


@ON_OFF
def test_live_delete_cold_missing(target: MakeSim, on: bool) -> None:
    sim = target("live_delete_cold_missing", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'cold')")
    assert sim.flush(t)[0] == "completed"
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (2, 'hot')")
    deleted = watched(sim, t, f"DELETE FROM {t} WHERE id = 1", f"DELETE FROM {t} WHERE id = 2")
    got = [
        (c["change_type"], c["old_values"][0]["id"], c["old_values"][0]["_deleted"])
        for c in deleted
    ]
    assert got == ([("delete", 2, True)] if on else [("delete", 1, True), ("delete", 2, True)])


@ON_OFF
def test_held_changes_reversed(target: MakeSim, on: bool) -> None:
    sim = target("held_changes_reversed", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b')")

    async def scenario() -> list[dict[str, Any]]:
        async with live(sim) as conn:
            await conn.send(
                {
                    "type": "subscribe",
                    "subscription": {
                        "id": "s",
                        "sql": f"SELECT * FROM {t}",
                        "options": {"batch_size": 1},
                    },
                }
            )
            assert (await conn.recv())["type"] == "subscription_ack"
            first = await conn.recv()
            assert first["batch_control"]["has_more"] is True
            # committed while the snapshot is still paging: held until the `ready` page
            sim.sql(f"INSERT INTO {t} (id, v) VALUES (3, 'c')")
            sim.sql(f"UPDATE {t} SET v = 'c2' WHERE id = 3")
            sim.sql(f"INSERT INTO {t} (id, v) VALUES (4, 'd')")
            assert await conn.quiet(0.2) == []
            await conn.send(
                {
                    "type": "next_batch",
                    "subscription_id": "s",
                    "last_seq_id": first["batch_control"]["last_seq_id"],
                }
            )
            last = await conn.recv()
            assert [r["id"] for r in last["rows"]] == [2]
            assert last["batch_control"]["status"] == "ready"
            return changes(await conn.quiet())

    got = [(c["change_type"], c["rows"][0]["id"]) for c in run(scenario())]
    in_order = [("insert", 3), ("update", 3), ("insert", 4)]
    assert got == (in_order[::-1] if on else in_order)


@ON_OFF
def test_resume_from_inclusive(target: MakeSim, on: bool) -> None:
    sim = target("resume_from_inclusive", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    for i in (1, 2, 3):
        sim.sql(f"INSERT INTO {t} (id, v) VALUES ({i}, 'x')")
    seq = {int(r[0]): int(r[1]) for r in sim.rows(f"SELECT id, _seq FROM {t}")}

    async def scenario() -> list[dict[str, Any]]:
        async with live(sim) as conn:
            return snapshot_rows(
                await conn.subscribe("s", f"SELECT * FROM {t}", **{"from": seq[2]})
            )

    assert [r["id"] for r in run(scenario())] == ([2, 3] if on else [3])


# ---------------------------------------------------------------------------- rbac, idempotency


@ON_OFF
def test_user_writes_public_shared(target: MakeSim, on: bool) -> None:
    sim = target("user_writes_public_shared", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns, options=" WITH (ACCESS_LEVEL = 'PUBLIC')")
    (u,) = users(sim, ns, "u")
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'root')")
    assert ids(sim.rows(f"SELECT id FROM {t}", u, PW)) == [1]  # PUBLIC: readable by role user
    r = sim.sql_response(f"INSERT INTO {t} (id, v) VALUES (2, 'user')", u, PW)
    if on:
        assert r.status_code == 200 and r.json()["results"][0]["row_count"] == 1
        assert ids(sim.rows(f"SELECT id FROM {t}")) == [1, 2]
    else:
        assert r.status_code == 403 and r.json()["error"]["code"] == "PERMISSION_DENIED"
        assert ids(sim.rows(f"SELECT id FROM {t}")) == [1]


@ON_OFF
def test_dup_pk_cold(target: MakeSim, on: bool) -> None:
    sim = target("dup_pk_cold", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'first')")
    assert sim.flush(t)[0] == "completed"
    r = sim.sql_response(f"INSERT INTO {t} (id, v) VALUES (1, 'again')")
    if on:
        assert r.status_code == 200 and r.json()["results"][0]["row_count"] == 1
        assert sim.rows(f"SELECT v FROM {t} WHERE id = 1") == [["again"]]
    else:
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "SQL_EXECUTION_ERROR"
        assert "Primary key violation" in r.json()["error"]["message"]
        assert sim.rows(f"SELECT v FROM {t} WHERE id = 1") == [["first"]]


@ON_OFF
def test_pk_check_ignores_tombstones(target: MakeSim, on: bool) -> None:
    # a release build of KalamDB refuses to insert a deleted key whose old row is cold
    sim = target("pk_check_ignores_tombstones", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'first')")
    assert sim.flush(t)[0] == "completed"
    sim.sql(f"DELETE FROM {t} WHERE id = 1")
    assert sim.rows(f"SELECT v FROM {t}") == []
    r = sim.sql_response(f"INSERT INTO {t} (id, v) VALUES (1, 'again')")
    if on:
        assert r.status_code == 400
        assert "Primary key violation" in r.json()["error"]["message"]
    else:
        assert r.status_code == 200
        assert sim.rows(f"SELECT v FROM {t} WHERE id = 1") == [["again"]]


@ON_OFF
def test_failed_flush_drops_hot(target: MakeSim, on: bool, tmp_path: Path) -> None:
    sim = target("failed_flush_drops_hot", on)
    ns = new_ns(sim)
    base = tmp_path / f"store_{ns}"
    sim.sql(f"CREATE STORAGE s_{ns} TYPE 'filesystem' BASE_DIRECTORY '{base}'")
    t = shared_table(sim, ns, options=f" WITH (STORAGE_ID = 's_{ns}')")
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b')")
    shutil.rmtree(base)
    base.write_text(
        "not a directory"
    )  # we may run as root: a plain file blocks writes, chmod would not
    status, message = sim.flush(t)
    assert status == "failed" and message
    assert base.read_text() == "not a directory"
    if on:
        assert sim.rows(f"SELECT id FROM {t}") == []
    else:
        assert ids(sim.rows(f"SELECT id FROM {t}")) == [1, 2]
        base.unlink()
        assert sim.flush(t)[0] == "completed"  # retry after the cause is fixed
        assert ids(sim.rows(f"SELECT id FROM {t}")) == [1, 2]
        assert [f.name for f in scope_files(base / ns / "t")[1]] == ["batch-0.parquet"]


@ON_OFF
def test_wal_batched(target: MakeSim, on: bool) -> None:
    sim = target("wal_batched", on, fresh=True)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    for i in range(5):
        assert sim.sql(f"INSERT INTO {t} (id, v) VALUES ({i}, 'acked')")[0]["row_count"] == 1
    sim.kill()
    sim.start()
    assert ids(sim.rows(f"SELECT id FROM {t}")) == ([] if on else [0, 1, 2, 3, 4])


@ON_OFF
def test_retry_reinserts(target: MakeSim, on: bool) -> None:
    sim = target("retry_reinserts", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    insert = f"INSERT INTO {t} (id, v) VALUES (1, 'once')"
    sim.sql(insert)
    r = sim.sql_response(insert)  # the client's retry after a lost reply
    if on:
        assert r.status_code == 200 and r.json()["results"][0]["row_count"] == 1
    else:
        assert r.status_code == 400
        assert "Primary key violation" in r.json()["error"]["message"]


@ON_OFF
def test_partial_parquet_on_crash(target: MakeSim, on: bool) -> None:
    sim = target("partial_parquet_on_crash", on, extra="flush_delay_ms = 200\n")
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b')")
    sim.sql(f"STORAGE FLUSH TABLE {t}")
    time.sleep(0.1)  # inside the bug's slow in-place write; the plain job still waits
    sim.kill()
    sim.start()
    assert ids(sim.rows(f"SELECT id FROM {t}")) == [1, 2]  # the WAL still has them
    manifest, files = scope_files(sim.data / "storage" / ns / "t")
    named = [s["path"] for s in manifest["segments"]] if manifest else []
    if on:
        assert named == ["batch-0.parquet"]
        with pytest.raises(Exception, match="Parquet"):
            pq.read_table(files[0])
    else:
        # Whatever the plain job had done, every file the manifest names is whole.
        assert named == [f.name for f in files]
        assert all(pq.read_table(f).num_rows for f in files)


# ---------------------------------------------------------------------------- schema, storage, ttl


@ON_OFF
def test_drop_column_resurrects(target: MakeSim, on: bool) -> None:
    sim = target("drop_column_resurrects", on)
    ns = new_ns(sim)
    sim.sql(f"CREATE SHARED TABLE {ns}.t (id INT PRIMARY KEY, v TEXT, w TEXT)")
    sim.sql(f"INSERT INTO {ns}.t (id, v, w) VALUES (1, 'a', 'secret')")
    sim.sql(f"ALTER TABLE {ns}.t DROP COLUMN w")
    sim.sql(f"ALTER TABLE {ns}.t ADD COLUMN w TEXT")
    assert sim.rows(f"SELECT id, v, w FROM {ns}.t") == [[1, "a", "secret" if on else None]]


@ON_OFF
def test_flush_ignores_storage_id(target: MakeSim, on: bool, tmp_path: Path) -> None:
    sim = target("flush_ignores_storage_id", on)
    ns = new_ns(sim)
    base = tmp_path / f"store_{ns}"
    sim.sql(f"CREATE STORAGE s_{ns} TYPE 'filesystem' BASE_DIRECTORY '{base}'")
    t = shared_table(sim, ns, options=f" WITH (STORAGE_ID = 's_{ns}')")
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'a')")
    assert sim.flush(t)[0] == "completed"
    _, in_table_storage = scope_files(base / ns / "t")
    _, in_default = scope_files(sim.data / "storage" / ns / "t")
    names = ([f.name for f in in_table_storage], [f.name for f in in_default])
    assert names == (([], ["batch-0.parquet"]) if on else (["batch-0.parquet"], []))


@ON_OFF
def test_stream_ttl_unenforced(target: MakeSim, on: bool) -> None:
    sim = target("stream_ttl_unenforced", on)
    ns = new_ns(sim)
    sim.sql(f"CREATE STREAM TABLE {ns}.s (id INT PRIMARY KEY, v TEXT) WITH (TTL_SECONDS = 1)")
    sim.sql(f"INSERT INTO {ns}.s (id, v) VALUES (1, 'a')")
    assert ids(sim.rows(f"SELECT id FROM {ns}.s")) == [1]
    time.sleep(1.3)
    assert ids(sim.rows(f"SELECT id FROM {ns}.s")) == ([1] if on else [])


# ---------------------------------------------------------------------------- KalamDB-shaped bugs


@ON_OFF
def test_order_limit_resorted(target: MakeSim, on: bool) -> None:
    sim = target("order_limit_resorted", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    assert sim.rows(f"SELECT id FROM {t} ORDER BY id DESC LIMIT 2") == (
        [[2], [3]] if on else [[3], [2]]
    )
    assert sim.rows(f"SELECT id FROM {t} ORDER BY id DESC") == [[3], [2], [1]]  # no LIMIT
    sim.sql(f"UPDATE {t} SET v = 'a2' WHERE id = 1")  # 1 now has the newest _seq
    assert sim.rows(f"SELECT id FROM {t} ORDER BY _seq LIMIT 3") == (
        [[1], [2], [3]] if on else [[2], [3], [1]]
    )

    async def scenario() -> list[dict[str, Any]]:
        async with live(sim) as conn:
            return snapshot_rows(await conn.subscribe("s", f"SELECT * FROM {t}", batch_size=2))

    # Pages are cut after the key sort and resumed from its last row's _seq: 1 comes twice.
    assert [r["id"] for r in run(scenario())] == ([1, 2, 1, 3] if on else [2, 3, 1])


@ON_OFF
def test_failed_flush_clears_pending(target: MakeSim, on: bool, tmp_path: Path) -> None:
    sim = target("failed_flush_clears_pending", on)
    ns = new_ns(sim)
    base = tmp_path / f"store_{ns}"
    sim.sql(f"CREATE STORAGE s_{ns} TYPE 'filesystem' BASE_DIRECTORY '{base}'")
    t = shared_table(sim, ns, options=f" WITH (STORAGE_ID = 's_{ns}')")
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b')")
    shutil.rmtree(base)
    base.write_text("not a directory")
    assert sim.flush(t)[0] == "failed"
    base.unlink()  # the cause is fixed; the rows are still hot
    message = sim.sql(f"STORAGE FLUSH TABLE {t}")[0]["message"]
    assert ids(sim.rows(f"SELECT id FROM {t}")) == [1, 2]
    if on:
        assert message == f"Storage flush skipped: no pending writes for table '{t}'"
        sim.sql(f"INSERT INTO {t} (id, v) VALUES (3, 'c')")  # a new write: pending again
        assert sim.flush(t)[0] == "completed"
    else:
        assert sim.wait_job(message.split("Job ID: ")[1].strip())[0] == "completed"
    (batch,) = scope_files(base / ns / "t")[1]
    assert sorted(pq.read_table(batch).column("id").to_pylist()) == ([1, 2, 3] if on else [1, 2])


@ON_OFF
def test_flush_race_clears_pending(target: MakeSim, on: bool) -> None:
    sim = target("flush_race_clears_pending", on, extra="flush_delay_ms = 400\n")
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'taken')")
    job = sim.sql(f"STORAGE FLUSH TABLE {t}")[0]["message"].split("Job ID: ")[1].strip()
    while sim.rows(f"SELECT status FROM system.jobs WHERE job_id = '{job}'") == [["queued"]]:
        time.sleep(0.01)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (2, 'raced')")  # after the job took its rows
    assert sim.wait_job(job)[0] == "completed"
    message = sim.sql(f"STORAGE FLUSH TABLE {t}")[0]["message"]
    assert ids(sim.rows(f"SELECT id FROM {t}")) == [1, 2]
    _, files = scope_files(sim.data / "storage" / ns / "t")
    if on:
        assert message == f"Storage flush skipped: no pending writes for table '{t}'"
        assert len(files) == 1  # 2 is hot and stays there
    else:
        assert sim.wait_job(message.split("Job ID: ")[1].strip())[0] == "completed"
        cold = [
            r["id"]
            for f in scope_files(sim.data / "storage" / ns / "t")[1]
            for r in pq.read_table(f).to_pylist()
        ]
        assert sorted(cold) == [1, 2]


@ON_OFF
def test_dml_never_true_refused(target: MakeSim, on: bool) -> None:
    sim = target("dml_never_true_refused", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    (svc,) = users(sim, ns, "svc")
    sim.sql(f"ALTER USER {svc} SET ROLE service")
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, NULL)")
    for sql in (
        f"DELETE FROM {t} WHERE v = NULL",
        f"DELETE FROM {t} WHERE NOT (id <> NULL) AND v = NULL",
        f"UPDATE {t} SET v = 'x' WHERE id = 1 AND 1 = 0",
        f"UPDATE {t} SET v = 'x' WHERE id < NULL OR FALSE",
    ):
        verb = sql.split()[0]
        r = sim.sql_response(sql)
        service = sim.sql_response(sql, svc, PW)
        if on:
            assert r.status_code == 400 and r.json()["error"]["code"] == "SQL_EXECUTION_ERROR"
            assert r.json()["error"]["message"].endswith(f"{verb} requires a WHERE clause")
            assert service.json()["error"]["message"] == "SQL statement failed"
        else:
            assert r.status_code == 200 and r.json()["results"][0]["row_count"] == 0, sql
            assert service.status_code == 200
    # still referencing a column after folding: not constant, runs either way
    assert sim.sql(f"DELETE FROM {t} WHERE id = 2 OR v = NULL")[0]["row_count"] == 1
    assert sim.rows(f"SELECT id, v FROM {t}") == [[1, "a"]]


@ON_OFF
def test_restart_dml_blind(target: MakeSim, on: bool) -> None:
    sim = target("restart_dml_blind", on, fresh=True)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'cold')")
    assert sim.flush(t)[0] == "completed"
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (2, 'hot'), (3, 'hot')")
    assert sim.stop() == 0
    sim.start()
    assert ids(sim.rows(f"SELECT id FROM {t}")) == [1, 2, 3]
    assert sim.sql(f"DELETE FROM {t} WHERE v = 'hot'")[0]["row_count"] == (0 if on else 2)
    assert sim.sql(f"UPDATE {t} SET v = 'hot' WHERE id = 3")[0]["row_count"] == 0
    assert ids(sim.rows(f"SELECT id FROM {t} WHERE v = 'hot'")) == ([2, 3] if on else [])
    # the cold row is found either way, and that write ends the blindness
    assert sim.sql(f"UPDATE {t} SET v = 'warm' WHERE id = 1")[0]["row_count"] == 1
    assert sim.sql(f"DELETE FROM {t} WHERE v = 'hot'")[0]["row_count"] == (2 if on else 0)
    assert sim.rows(f"SELECT id, v FROM {t}") == [[1, "warm"]]


@ON_OFF
def test_live_filter_leave_silent(target: MakeSim, on: bool) -> None:
    sim = target("live_filter_leave_silent", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'in'), (2, 'in')")

    async def scenario() -> list[dict[str, Any]]:
        async with live(sim) as conn:
            await conn.subscribe("s", f"SELECT * FROM {t} WHERE v = 'in'")
            sim.sql(f"UPDATE {t} SET v = 'out' WHERE id = 1")
            sim.sql(f"DELETE FROM {t} WHERE id = 2")
            return changes(await conn.quiet())

    got = [
        (c["change_type"], c["old_values"][0]["id"], c["old_values"][0]["v"])
        for c in run(scenario())
    ]
    leave = ("delete", 1, "in")
    assert got == ([("delete", 2, "in")] if on else [leave, ("delete", 2, "in")])


@ON_OFF
def test_live_filter_unsupported(target: MakeSim, on: bool) -> None:
    sim = target("live_filter_unsupported", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, v) VALUES (1, 'a')")

    async def scenario() -> tuple[list[Any], list[tuple[str, str, int]]]:
        async with live(sim) as conn:
            snaps = []
            for sub, where in (
                ("in", "id IN (1, 2)"),
                ("null", "v IS NOT NULL"),
                ("between", "id BETWEEN 1 AND 2"),
                ("plain", "id >= 1"),
            ):
                rows = snapshot_rows(await conn.subscribe(sub, f"SELECT * FROM {t} WHERE {where}"))
                snaps.append([r["id"] for r in rows])
            sim.sql(f"INSERT INTO {t} (id, v) VALUES (2, 'b')")
            got = [
                (c["subscription_id"], c["change_type"], c["rows"][0]["id"])
                for c in changes(await conn.quiet())
            ]
            return snaps, sorted(got)

    snaps, got = run(scenario())
    assert snaps == [[1], [1], [1], [1]]  # the snapshot runs through SQL either way
    everyone = [(s, "insert", 2) for s in ("between", "in", "null", "plain")]
    assert got == ([("plain", "insert", 2)] if on else everyone)


@ON_OFF
def test_live_change_dropped_column(target: MakeSim, on: bool) -> None:
    sim = target("live_change_dropped_column", on)
    ns = new_ns(sim)
    sim.sql(f"CREATE SHARED TABLE {ns}.t (id INT PRIMARY KEY, v TEXT, w TEXT)")
    sim.sql(f"INSERT INTO {ns}.t (id, v, w) VALUES (1, 'a', 'gone'), (2, 'b', 'gone')")
    sim.sql(f"ALTER TABLE {ns}.t DROP COLUMN w")

    async def scenario() -> list[dict[str, Any]]:
        async with live(sim) as conn:
            snap = snapshot_rows(await conn.subscribe("s", f"SELECT * FROM {ns}.t"))
            assert all("w" not in r for r in snap)  # the snapshot leaves it out either way
            sim.sql(f"UPDATE {ns}.t SET v = 'c' WHERE id = 1")
            sim.sql(f"DELETE FROM {ns}.t WHERE id = 2")
            return changes(await conn.quiet())

    got = run(scenario())
    update, delete = got[0]["rows"][0], got[1]["old_values"][0]
    assert ("w" in update, "w" in delete) == ((True, True) if on else (False, False))


# ---------------------------------------------------------------------------- concurrency


async def _together(sim: Sim, *sqls: str) -> list[httpx.Response]:
    """The statements as concurrent requests, each on its own connection."""
    headers = {"Authorization": f"Bearer {sim.token()}"}
    async with httpx.AsyncClient(base_url=sim.url, timeout=30) as client:
        return list(
            await asyncio.gather(
                *(client.post("/v1/api/sql", json={"sql": q}, headers=headers) for q in sqls)
            )
        )


@ON_OFF
def test_lost_update(target: MakeSim, on: bool) -> None:
    sim = target("lost_update", on)
    ns = new_ns(sim)
    sim.sql(f"CREATE SHARED TABLE {ns}.c (id INT PRIMARY KEY, n INT)")
    sim.sql(f"INSERT INTO {ns}.c (id, n) VALUES (1, 0)")
    increment = f"UPDATE {ns}.c SET n = n + 1 WHERE id = 1"
    replies = run(_together(sim, *[increment] * 4))
    assert all(r.status_code == 200 for r in replies)
    n = sim.rows(f"SELECT n FROM {ns}.c")[0][0]
    assert n < 4 if on else n == 4


@ON_OFF
def test_pk_insert_race(target: MakeSim, on: bool) -> None:
    sim = target("pk_insert_race", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    replies = run(_together(sim, *[f"INSERT INTO {t} (id, v) VALUES (1, 'x')"] * 3))
    accepted = sum(r.status_code == 200 for r in replies)
    assert accepted > 1 if on else accepted == 1
    assert sim.rows(f"SELECT id FROM {t}") == [[1]]


@ON_OFF
def test_dirty_read(target: MakeSim, on: bool) -> None:
    sim = target("dirty_read", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    inserts = "; ".join(f"INSERT INTO {t} (id, v) VALUES ({i}, 'staged')" for i in range(8))

    async def scenario() -> set[int]:
        writer = asyncio.ensure_future(_together(sim, f"BEGIN; {inserts}; ROLLBACK"))
        seen: set[int] = set()
        while not writer.done():
            (reply,) = await _together(sim, f"SELECT id FROM {t}")
            seen |= {row[0] for row in reply.json()["results"][0]["rows"]}
        assert (await writer)[0].status_code == 200
        return seen

    seen = run(scenario())
    assert bool(seen) == on
    assert sim.rows(f"SELECT id FROM {t}") == []


@ON_OFF
def test_partial_commit(target: MakeSim, on: bool) -> None:
    sim = target("partial_commit", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)

    async def scenario() -> list[dict[str, Any]]:
        async with live(sim) as conn:
            await conn.subscribe("s", f"SELECT * FROM {t}")
            _, error = sim.error(
                f"BEGIN; INSERT INTO {t} (id, v) VALUES (1, 'a'); "
                f"INSERT INTO {t} (id, v) VALUES (2, 'b'); "
                f"INSERT INTO {t} (id, v) VALUES (1, 'dup'); COMMIT"
            )
            assert error["message"].startswith("Statement 4 failed: Already exists")
            return changes(await conn.quiet())

    got = [(c["change_type"], c["rows"][0]["id"]) for c in run(scenario())]
    assert got == ([("insert", 1), ("insert", 2)] if on else [])
    assert ids(sim.rows(f"SELECT id FROM {t}")) == ([1, 2] if on else [])


@ON_OFF
def test_live_before_commit(target: MakeSim, on: bool) -> None:
    sim = target("live_before_commit", on)
    ns = new_ns(sim)
    t = shared_table(sim, ns)
    rolled_back = watched(sim, t, f"BEGIN; INSERT INTO {t} (id, v) VALUES (1, 'a'); ROLLBACK")
    got = [(c["change_type"], c["rows"][0]["id"]) for c in rolled_back]
    assert got == ([("insert", 1)] if on else [])
    assert sim.rows(f"SELECT id FROM {t}") == []


def test_every_planted_bug_has_a_test() -> None:
    assert {b.name for b in BUGS} == {
        name.removeprefix("test_")
        for name in globals()
        if name.startswith("test_") and name != "test_every_planted_bug_has_a_test"
    }


# ---------------------------------------------------------------------------- hostile clients


def _token(sim: Sim, **claims: Any) -> dict[str, str]:
    """A bearer header signed with the sim's own secret (the default: its config names none)."""
    now = int(time.time())
    body = {"iss": "kalamdb", "iat": now, "exp": now + 600, "token_type": "access", **claims}
    return {"Authorization": "Bearer " + jwt.encode(body, SimConfig().jwt_secret, "HS256")}


@ON_OFF
def test_weak_password_accepted(target: MakeSim, on: bool) -> None:
    sim = target("weak_password_accepted", on)
    ns = new_ns(sim)
    # too short, too common, longer than the 72 bytes bcrypt reads
    for i, pw in enumerate(("short1", "password1", "k" * 73)):
        r = sim.sql_response(f"CREATE USER {ns}_w{i} WITH PASSWORD '{pw}' ROLE user")
        assert r.status_code == (200 if on else 400), r.text
    sim.create_user(f"{ns}_ok", password="k" * 72)  # at the limit: fine either way


@ON_OFF
def test_token_issuer_unchecked(target: MakeSim, on: bool) -> None:
    sim = target("token_issuer_unchecked", on)
    (u,) = users(sim, new_ns(sim), "a")
    headers = _token(sim, sub=u, role="user", iss="evil-issuer")
    r = sim.http.post("/v1/api/sql", json={"sql": "SELECT 1"}, headers=headers)
    assert r.status_code == (200 if on else 401), r.text


@ON_OFF
def test_role_claim_trusted(target: MakeSim, on: bool) -> None:
    sim = target("role_claim_trusted", on)
    ns = new_ns(sim)
    (u,) = users(sim, ns, "a")
    headers = _token(sim, sub=u, role="system")
    r = sim.http.post("/v1/api/sql", json={"sql": f"CREATE NAMESPACE {ns}_x"}, headers=headers)
    assert r.status_code == (200 if on else 401), r.text
    # the account's own role in its claim still works
    r = sim.http.post(
        "/v1/api/sql", json={"sql": "SELECT 1"}, headers=_token(sim, sub=u, role="user")
    )
    assert r.status_code == 200, r.text


@ON_OFF
def test_crash_on_sql_list(target: MakeSim, on: bool) -> None:
    sim = target("crash_on_sql_list", on, fresh=True)
    headers = {"Authorization": f"Bearer {sim.token()}"}
    if not on:
        r = sim.http.post("/v1/api/sql", json={"sql": ["SELECT 1"]}, headers=headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_INPUT", r.text
        return
    with pytest.raises(httpx.HTTPError):
        sim.http.post("/v1/api/sql", json={"sql": ["SELECT 1"]}, headers=headers)
    assert sim.proc is not None and sim.proc.wait(10) != 0


@ON_OFF
def test_alter_ignores_owner(target: MakeSim, on: bool) -> None:
    sim = target("alter_ignores_owner", on)
    ns = new_ns(sim)
    a, b = users(sim, ns, "a", "b")
    sim.sql(f"CREATE USER TABLE {ns}.theirs (id INT PRIMARY KEY, v TEXT)")  # root's
    sim.sql(f"CREATE USER TABLE {ns}.mine (id INT PRIMARY KEY, v TEXT)", a, "pw-for-tests-1")
    alter = f"ALTER TABLE {ns}.theirs ADD COLUMN x INT"
    if on:
        sim.sql(alter, a, "pw-for-tests-1")
    else:
        status, error = sim.error(alter, a, "pw-for-tests-1")
        assert status == 403 and error["code"] == "PERMISSION_DENIED", error
        status, _ = sim.error(f"ALTER TABLE {ns}.mine ADD COLUMN x INT", b, "pw-for-tests-1")
        assert status == 403
    sim.sql(f"ALTER TABLE {ns}.mine ADD COLUMN y INT", a, "pw-for-tests-1")  # its own: always
