"""The sim speaks KalamDB's live-query protocol on /v1/ws."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import pytest
import websockets

from .conftest import Sim, live


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _seed(sim: Sim, ns: str, n: int = 5) -> None:
    sim.sql(f"CREATE TABLE {ns}.w (id INT PRIMARY KEY, v TEXT, k INT) WITH (TYPE='USER')")
    if n:
        sim.sql(
            f"INSERT INTO {ns}.w (id, v, k) VALUES "
            + ", ".join(f"({i}, 'v{i}', {i})" for i in range(1, n + 1))
        )


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 100])
def test_snapshot_paging(sim: Sim, ns: str, batch_size: int) -> None:
    _seed(sim, ns, 6)

    async def go() -> None:
        async with live(sim) as conn:
            messages = await conn.subscribe(
                "s", f"SELECT id, v FROM {ns}.w WHERE k > 0", batch_size=batch_size
            )
            ack, batches = messages[0], messages[1:]
            assert ack["type"] == "subscription_ack" and ack["total_rows"] == 0
            assert ack["batch_control"] == batches[0]["batch_control"]
            assert [c["name"] for c in ack["schema"]] == ["id", "v"]
            sizes = [len(b["rows"]) for b in batches]
            assert (
                sum(sizes) == 6
                and all(s == batch_size for s in sizes[:-1])
                and 0 < sizes[-1] <= batch_size
            )
            assert [b["batch_control"]["batch_num"] for b in batches] == list(range(len(batches)))
            assert [b["batch_control"]["has_more"] for b in batches] == [True] * (
                len(batches) - 1
            ) + [False]
            assert batches[-1]["batch_control"]["status"] == "ready"
            rows = [r for b in batches for r in b["rows"]]
            seqs = [int(r["_seq"]) for r in rows]
            assert seqs == sorted(seqs) and [r["id"] for r in rows] == [1, 2, 3, 4, 5, 6]
            assert batches[-1]["batch_control"]["last_seq_id"] == seqs[-1]

    run(go())


def test_changes_shapes_and_filter(sim: Sim, ns: str) -> None:
    _seed(sim, ns, 2)

    async def go() -> None:
        async with live(sim) as conn:
            await conn.subscribe("all", f"SELECT * FROM {ns}.w")
            await conn.subscribe("f", f"SELECT id, v FROM {ns}.w WHERE k >= 10")
            sim.sql(f"INSERT INTO {ns}.w (id, v, k) VALUES (3, 'c', 30), (4, 'd', 1)")
            sim.sql(f"UPDATE {ns}.w SET v = 'cc' WHERE id = 3")
            sim.sql(f"UPDATE {ns}.w SET k = 0 WHERE id = 3")
            sim.sql(f"DELETE FROM {ns}.w WHERE id = 4")
            got = await conn.quiet()
            f = [m for m in got if m["subscription_id"] == "f"]
            a = [m for m in got if m["subscription_id"] == "all"]
            assert [m["change_type"] for m in a] == [
                "insert",
                "insert",
                "update",
                "update",
                "delete",
            ]
            assert a[0]["rows"][0] == {
                **a[0]["rows"][0],
                "id": 3,
                "v": "c",
                "k": 30,
                "_deleted": False,
            }
            assert "old_values" not in a[0]
            assert a[2]["rows"][0]["v"] == "cc" and a[2]["old_values"][0] == {
                **a[2]["old_values"][0],
                "id": 3,
                "v": "c",
            }
            assert "k" not in a[2]["old_values"][0]  # old_values carries only what changed
            assert a[4]["old_values"][0]["_deleted"] is True and "rows" not in a[4]
            # the filtered subscription: insert of 3, its update, then it leaves the result
            assert [m["change_type"] for m in f] == ["insert", "update", "delete"]
            assert set(f[0]["rows"][0]) == {"id", "v", "_seq"}
            assert int(f[2]["old_values"][0]["_seq"]) > int(f[1]["rows"][0]["_seq"])

    run(go())


def test_changes_during_snapshot_are_held(sim: Sim, ns: str) -> None:
    _seed(sim, ns, 4)

    async def go() -> None:
        async with live(sim) as conn:
            await conn.send(
                {
                    "type": "subscribe",
                    "subscription": {
                        "id": "h",
                        "sql": f"SELECT id FROM {ns}.w",
                        "options": {"batch_size": 2},
                    },
                }
            )
            assert (await conn.recv())["type"] == "subscription_ack"
            first = await conn.recv()
            sim.sql(f"INSERT INTO {ns}.w (id, v, k) VALUES (9, 'x', 9)")
            sim.sql(f"DELETE FROM {ns}.w WHERE id = 1")
            assert await conn.quiet(0.2) == []  # nothing before the ready page
            await conn.send(
                {
                    "type": "next_batch",
                    "subscription_id": "h",
                    "last_seq_id": first["batch_control"]["last_seq_id"],
                }
            )
            last = await conn.recv()
            assert last["batch_control"]["status"] == "ready" and [
                r["id"] for r in last["rows"]
            ] == [3, 4]
            held = await conn.quiet()
            assert [
                (m["change_type"], (m.get("rows") or m.get("old_values"))[0]["id"]) for m in held
            ] == [("insert", 9), ("delete", 1)]

    run(go())


def test_resume_from_seq_and_last_rows(sim: Sim, ns: str) -> None:
    _seed(sim, ns, 5)

    async def go() -> None:
        async with live(sim) as conn:
            snap = await conn.subscribe("a", f"SELECT id FROM {ns}.w")
            high = max(int(r["_seq"]) for b in snap[1:] for r in b["rows"])
        sim.sql(f"INSERT INTO {ns}.w (id, v, k) VALUES (6, 'x', 6)")
        sim.sql(f"UPDATE {ns}.w SET v = 'y' WHERE id = 2")
        async with live(sim) as conn:
            resumed = await conn.subscribe("a", f"SELECT id FROM {ns}.w", **{"from": high})
            assert sorted(r["id"] for b in resumed[1:] for r in b["rows"]) == [2, 6]
            tail = await conn.subscribe("t", f"SELECT id FROM {ns}.w", last_rows=2, batch_size=10)
            assert [r["id"] for r in tail[1]["rows"]] == [6, 2] and tail[1]["batch_control"][
                "has_more"
            ] is False
            no_snap_ack = None
            await conn.send(
                {"type": "subscribe", "subscription": {"id": "n", "sql": f"SELECT id FROM {ns}.w"}}
            )
            no_snap_ack = await conn.recv()
            assert no_snap_ack["batch_control"] == {
                "batch_num": 0,
                "has_more": False,
                "status": "ready",
                "last_seq_id": None,
            }
            assert await conn.quiet(0.2) == []

    run(go())


def test_per_user_routing_and_shared_access(sim: Sim, ns: str) -> None:
    _seed(sim, ns, 0)
    a, b = f"{ns}_a", f"{ns}_b"
    sim.create_user(a)
    sim.create_user(b)
    pw = "pw-for-tests-1"
    sim.sql(f"CREATE SHARED TABLE {ns}.priv (id INT PRIMARY KEY)")
    sim.sql(f"CREATE SHARED TABLE {ns}.pub (id INT PRIMARY KEY) WITH (ACCESS_LEVEL='PUBLIC')")

    async def go() -> None:
        async with live(sim, a, pw) as conn:
            await conn.subscribe("mine", f"SELECT id FROM {ns}.w")
            await conn.subscribe("pub", f"SELECT id FROM {ns}.pub")
            denied = await conn.subscribe("priv", f"SELECT id FROM {ns}.priv")
            assert denied[0]["type"] == "error" and denied[0]["code"] == "UNAUTHORIZED"
            sim.sql(f"INSERT INTO {ns}.w (id, v, k) VALUES (1, 'b', 1)", b, pw)
            sim.sql(f"INSERT INTO {ns}.w (id, v, k) VALUES (2, 'a', 2)", a, pw)
            sim.sql(f"INSERT INTO {ns}.pub (id) VALUES (7)")
            got = await conn.quiet()
            assert sorted((m["subscription_id"], m["rows"][0]["id"]) for m in got) == [
                ("mine", 2),
                ("pub", 7),
            ]
            await conn.send({"type": "unsubscribe", "subscription_id": "pub"})
            await asyncio.sleep(0.1)
            sim.sql(f"INSERT INTO {ns}.pub (id) VALUES (8)")
            assert await conn.quiet(0.2) == []
            rows = sim.rows(f"SELECT subscription_id FROM system.live WHERE user_id = '{a}'")
            assert rows == [["mine"]]

    run(go())


def test_subscribe_errors(sim: Sim, ns: str) -> None:
    _seed(sim, ns, 1)

    async def go() -> None:
        async with live(sim) as conn:
            cases = {
                f"SELECT id FROM {ns}.w ORDER BY id": "INVALID_SQL",
                "SELECT id FROM w": "INVALID_SQL",
                f"SELECT _seq FROM {ns}.w": "INVALID_SQL",
                f"SELECT id FROM {ns}.missing": "NOT_FOUND",
                f"SELECT nope FROM {ns}.w WHERE nope > 1": "SUBSCRIPTION_FAILED",
                f"SELECT id, nope FROM {ns}.w": "SUBSCRIPTION_FAILED",
            }
            for i, (sql, code) in enumerate(cases.items()):
                reply = await conn.subscribe(f"e{i}", sql)
                assert reply[0]["type"] == "error" and reply[0]["code"] == code, (sql, reply)
            await conn.send(
                {
                    "type": "subscribe",
                    "subscription": {"id": " ", "sql": f"SELECT id FROM {ns}.w", "options": {}},
                }
            )
            assert (await conn.recv())["code"] == "INVALID_SUBSCRIPTION_ID"
            big = await conn.subscribe("lr", f"SELECT id FROM {ns}.w", last_rows=5, batch_size=2)
            assert big[0]["code"] == "UNSUPPORTED"
            await conn.send({"type": "next_batch", "subscription_id": "ghost"})
            assert (await conn.recv())["code"] == "BATCH_FETCH_FAILED"
            await conn.ws.send(b"\x00binary")
            assert (await conn.recv())["code"] == "UNSUPPORTED_DATA"
            await conn.send({"type": "no_such_type"})
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await conn.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011

    run(go())


def test_message_auth_timeout_and_gzip(sim: Sim, ns: str) -> None:
    _seed(sim, ns, 30)

    async def go() -> None:
        async with websockets.connect(sim.ws_url) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "subscribe",
                        "subscription": {"id": "x", "sql": f"SELECT * FROM {ns}.w", "options": {}},
                    }
                )
            )
            assert json.loads(await ws.recv())["code"] == "AUTH_REQUIRED"
            await ws.send(
                json.dumps(
                    {
                        "type": "authenticate",
                        "method": "jwt",
                        "token": sim.token(),
                        "protocol": {"serialization": "json", "compression": "gzip"},
                    }
                )
            )
            assert json.loads(await ws.recv())["type"] == "auth_success"
            await ws.send(
                json.dumps(
                    {
                        "type": "subscribe",
                        "subscription": {"id": "x", "sql": f"SELECT * FROM {ns}.w", "options": {}},
                    }
                )
            )
            frames = [await ws.recv(), await ws.recv()]
            assert any(
                isinstance(f, bytes) for f in frames
            )  # the 30-row page is >= 512 bytes: gzip binary
            batch = json.loads(gzip.decompress(next(f for f in frames if isinstance(f, bytes))))
            assert len(batch["rows"]) == 30
        async with websockets.connect(sim.ws_url) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "authenticate",
                        "method": "jwt",
                        "token": "bad",
                        "protocol": {"serialization": "json", "compression": "gzip"},
                    }
                )
            )
            assert json.loads(await ws.recv())["type"] == "auth_error"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    run(go())


def test_heartbeat_timeout(fresh_sim: Sim) -> None:
    fresh_sim.env.update(
        {
            "KALAMDB_WEBSOCKET_CLIENT_TIMEOUT_SECS": "1",
            "KALAMDB_WEBSOCKET_HEARTBEAT_INTERVAL_SECS": "0.2",
        }
    )
    sim = fresh_sim.start()

    async def go() -> None:
        headers = {"Authorization": f"Bearer {sim.token()}"}
        async with websockets.connect(
            sim.ws_url + "?compress=false", additional_headers=headers, ping_interval=None
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "auth_success"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.reason == "Heartbeat timeout"

    run(go())
