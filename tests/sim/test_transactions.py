"""Explicit transactions on the plain sim: BEGIN ... COMMIT/ROLLBACK inside one /v1/api/sql
request, with KalamDB's replies (kdb/TRANSACTIONS-RESEARCH.md)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from kalamfuzz.sim.store import TableData, Version, WriteAheadLog, replay

from .conftest import ROOT_PASSWORD, Sim, live

PW = "pw-for-tests-1"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def table(sim: Sim, ns: str, kind: str = "SHARED", name: str = "t") -> str:
    sim.sql(f"CREATE {kind} TABLE {ns}.{name} (id INT PRIMARY KEY, n INT, s TEXT)")
    return f"{ns}.{name}"


def rows(sim: Sim, t: str, user: str = "root", password: str = "") -> list[list[Any]]:
    return sim.rows(f"SELECT id, n, s FROM {t} ORDER BY id", user, password or _pw(user))


def _pw(user: str) -> str:
    return ROOT_PASSWORD if user == "root" else PW


def txid(message: str, verb: str) -> str:
    m = re.fullmatch(rf"Transaction {verb} \(({UUID})\)", message)
    assert m, message
    return m.group(1)


def test_commit_result_shape_and_read_your_writes(sim: Sim, ns: str) -> None:
    t = table(sim, ns)
    res = sim.sql(
        f"begin transaction; INSERT INTO {t} (id, n) VALUES (1, 10), (2, 20); "
        f"UPDATE {t} SET n = n + 1 WHERE id = 1; DELETE FROM {t} WHERE id = 2; "
        f"INSERT INTO {t} (id, n) VALUES (3, 30); SELECT id, n FROM {t} ORDER BY id; "
        "COMMIT WORK"
    )
    began = txid(res[0]["message"], "started")
    assert txid(res[2]["message"], "committed") == began
    assert res[0] == {"row_count": 0, "message": res[0]["message"], "as_user": "root"}
    assert res[1]["rows"] == [[1, 11], [3, 30]] and res[1]["row_count"] == 2
    assert res[3:] == [
        {"row_count": 3, "message": "Inserted 3 row(s)", "as_user": "root"},
        {"row_count": 1, "message": "Updated 1 row(s)", "as_user": "root"},
        {"row_count": 1, "message": "Deleted 1 row(s)", "as_user": "root"},
    ]
    assert rows(sim, t) == [[1, 11, None], [3, 30, None]]


def test_rollback_and_several_blocks(sim: Sim, ns: str) -> None:
    t = table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, n) VALUES (1, 1), (2, 2)")
    res = sim.sql(
        f"INSERT INTO {t} (id, n) VALUES (3, 3); "
        f"START TRANSACTION; INSERT INTO {t} (id, n) VALUES (4, 4); COMMIT; "
        f"BEGIN; INSERT INTO {t} (id, n) VALUES (5, 5); UPDATE {t} SET n = 0 WHERE id = 1; "
        f"DELETE FROM {t} WHERE id = 2; SELECT id FROM {t} ORDER BY id; ROLLBACK"
    )
    assert [r.get("message") for r in res] == [
        res[0]["message"],
        res[1]["message"],
        res[2]["message"],
        None,
        res[4]["message"],
        "Inserted 3 row(s)",  # staged counts, the rolled-back block's included
        "Updated 1 row(s)",
        "Deleted 1 row(s)",
    ]
    second = txid(res[2]["message"], "started")
    assert txid(res[4]["message"], "rolled back") == second != txid(res[0]["message"], "started")
    assert res[3]["rows"] == [[1], [3], [4], [5]]
    assert rows(sim, t) == [[1, 1, None], [2, 2, None], [3, 3, None], [4, 4, None]]


def test_failing_statement_rolls_back_the_transaction(sim: Sim, ns: str) -> None:
    t = table(sim, ns)
    sim.create_user(f"{ns}_u", "dba")
    status, error = sim.error(
        f"INSERT INTO {t} (id, n) VALUES (1, 1); BEGIN; INSERT INTO {t} (id, n) VALUES (1, 9); COMMIT"
    )
    assert (status, error["code"]) == (400, "SQL_EXECUTION_ERROR")
    assert error["message"] == (
        "Statement 3 failed: Already exists: Primary key violation: value '1' already exists "
        "in column 'id'"
    )
    sql = (
        f"BEGIN; INSERT INTO {t} (id, n) VALUES (2, 2); COMMIT; BEGIN; "
        f"INSERT INTO {t} (id, n) VALUES (3, 3); UPDATE {t} SET n = 5 WHERE id = 1; "
        f"UPDATE {t} SET nope = 1 WHERE id = 1; COMMIT"
    )
    r = sim.sql_response(sql)
    body = r.json()
    assert r.status_code == 400 and body["results"] == []
    assert body["error"]["message"].startswith("Statement 7 failed: ")
    assert body["error"]["details"] == sql
    assert rows(sim, t) == [[1, 1, None], [2, 2, None]]


def test_open_transaction_at_end(sim: Sim, ns: str) -> None:
    t = table(sim, ns)
    user = f"{ns}_u"
    sim.create_user(user, "service")
    for who in ("root", user):
        r = sim.sql_response(
            f"INSERT INTO {t} (id, n) VALUES ({len(who)}, 0); BEGIN; "
            f"INSERT INTO {t} (id, n) VALUES (100, 1); SELECT id FROM {t}",
            who,
            _pw(who),
        )
        body = r.json()
        assert (r.status_code, body["status"], body["results"]) == (400, "error", [])
        error = body["error"]
        if who == "root":
            assert error == {
                "code": "SQL_EXECUTION_ERROR",
                "message": "Request completed with an open explicit transaction; "
                "rolled back automatically",
            }
        else:
            assert error == {"code": "SQL_EXECUTION_ERROR", "message": "SQL statement failed"}
    assert rows(sim, t) == [[4, 0, None], [len(user), 0, None]]


def test_control_errors(sim: Sim, ns: str) -> None:
    t = table(sim, ns)
    for i, verb in enumerate(("COMMIT", "ROLLBACK"), start=1):
        _, error = sim.error(f"INSERT INTO {t} (id) VALUES ({i}); {verb.lower()}")
        assert error["message"] == (
            f"Statement 2 failed: Invalid operation: {verb} requires an active explicit SQL "
            "transaction"
        )
    headers = {"Authorization": f"Bearer {sim.token()}", "X-Request-ID": "req-42"}
    r = sim.http.post(
        "/v1/api/sql",
        json={"sql": f"BEGIN; INSERT INTO {t} (id) VALUES (3); BEGIN; COMMIT"},
        headers=headers,
    )
    message = r.json()["error"]["message"]
    assert r.status_code == 400
    assert re.fullmatch(
        rf"Statement 3 failed: Conflict: request owner 'sql-req-req-42' already has an active "
        rf"transaction '{UUID}'",
        message,
    ), message
    assert [r[0] for r in rows(sim, t)] == [1, 2]


def test_ddl_and_stream_tables_are_refused(sim: Sim, ns: str) -> None:
    t = table(sim, ns)
    sim.sql(f"CREATE STREAM TABLE {ns}.ev (id INT PRIMARY KEY, n INT) WITH (TTL_SECONDS = 60)")
    sim.sql(f"INSERT INTO {ns}.ev (id, n) VALUES (1, 1)")
    for ddl in (
        f"CREATE TABLE {ns}.x (id INT PRIMARY KEY)",
        f"ALTER TABLE {t} ADD COLUMN z INT",
        f"DROP TABLE {t}",
        f"CREATE NAMESPACE {ns}_x",
    ):
        _, error = sim.error(f"BEGIN; INSERT INTO {t} (id) VALUES (1); {ddl}; COMMIT")
        assert re.fullmatch(
            rf"Statement 3 failed: Invalid operation: DDL is not allowed inside explicit "
            rf"transaction '{UUID}'",
            error["message"],
        ), error
    for dml in (f"INSERT INTO {ns}.ev (id, n) VALUES (2, 2)", f"DELETE FROM {ns}.ev WHERE id = 1"):
        _, error = sim.error(f"BEGIN; INSERT INTO {t} (id) VALUES (1); {dml}; COMMIT")
        assert error["message"] == (
            "Statement 3 failed: Invalid operation: stream tables are not supported inside "
            "explicit transactions"
        )
    assert sim.rows(f"SELECT id FROM {ns}.ev") == [[1]]
    assert rows(sim, t) == []
    assert sim.sql_response(f"SELECT * FROM {ns}.x").status_code == 400  # never created


def test_user_and_shared_in_one_transaction_fail_at_commit(sim: Sim, ns: str) -> None:
    shared = table(sim, ns)
    mine = table(sim, ns, "USER", "u")
    _, error = sim.error(
        f"BEGIN; INSERT INTO {shared} (id) VALUES (1); SELECT 1; "
        f"INSERT INTO {mine} (id) VALUES (1); COMMIT"
    )
    assert re.fullmatch(
        rf"Statement 5 failed: Invalid operation: failed to commit transaction '{UUID}': "
        r"Validation error: explicit transactions must remain within one data raft group; "
        rf"'{ns}:u' mapped to DataUserShard\(0\) while prior mutations mapped to "
        r"DataSharedShard\(0\)",
        error["message"],
    ), error
    assert rows(sim, shared) == [] and rows(sim, mine) == []


def test_execute_as_user_joins_the_transaction(sim: Sim, ns: str) -> None:
    t = table(sim, ns, "USER")
    a, b = f"{ns}_a", f"{ns}_b"
    sim.create_user(a)
    sim.create_user(b)
    res = sim.sql(
        f"BEGIN; EXECUTE AS USER '{a}' (INSERT INTO {t} (id, n) VALUES (1, 1)); "
        f"EXECUTE AS USER '{b}' (INSERT INTO {t} (id, n) VALUES (2, 2)); "
        f"EXECUTE AS USER '{a}' (UPDATE {t} SET n = n + 10 WHERE id = 1); "
        f"EXECUTE AS USER '{a}' (SELECT id, n FROM {t}); ROLLBACK"
    )
    assert res[1]["rows"] == [[1, 11]] and res[1]["as_user"] == a
    assert rows(sim, t, a) == [] and rows(sim, t, b) == []
    sim.sql(
        f"BEGIN; EXECUTE AS USER '{a}' (INSERT INTO {t} (id, n) VALUES (1, 1)); "
        f"EXECUTE AS USER '{b}' (INSERT INTO {t} (id, n) VALUES (2, 2)); COMMIT"
    )
    assert rows(sim, t, a) == [[1, 1, None]] and rows(sim, t, b) == [[2, 2, None]]


@pytest.mark.parametrize("explicit", [False, True])
def test_computed_assignments(sim: Sim, ns: str, explicit: bool) -> None:
    t = table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, n, s) VALUES (1, 5, 'x'), (2, -3, NULL), (3, NULL, 'y')")
    updates = [
        f"UPDATE {t} SET n = n + 1 WHERE id > 0",
        f"UPDATE {t} SET s = s || 'a' WHERE id > 0",
        f"UPDATE {t} SET n = -n WHERE id > 0",
        f"UPDATE {t} SET n = CASE WHEN n > 0 THEN n - 1 ELSE n + 1 END WHERE id > 0",
    ]
    if explicit:
        sim.sql("BEGIN; " + "; ".join(updates) + "; COMMIT")
    else:
        for u in updates:
            sim.sql(u)
    # 5 -> 6 -> -6 -> -5; -3 -> -2 -> 2 -> 1; NULL stays NULL throughout
    assert rows(sim, t) == [[1, -5, "xa"], [2, 1, None], [3, None, "ya"]]


def test_failed_autocommit_update_leaves_nothing(sim: Sim, ns: str) -> None:
    """An autocommit statement is its own transaction: a failure on its second row undoes the first."""
    sim.sql(f"CREATE SHARED TABLE {ns}.nn (id INT PRIMARY KEY, n INT NOT NULL)")
    sim.sql(f"INSERT INTO {ns}.nn (id, n) VALUES (1, 1)")
    sim.sql(f"INSERT INTO {ns}.nn (id, n) VALUES (2, 2)")
    _, error = sim.error(
        f"UPDATE {ns}.nn SET n = CASE WHEN id = 2 THEN NULL ELSE 7 END WHERE id > 0"
    )
    assert "NOT NULL constraint violation" in error["message"]
    assert sim.rows(f"SELECT id, n FROM {ns}.nn ORDER BY id") == [[1, 1], [2, 2]]


def test_live_changes_only_after_commit(sim: Sim, ns: str) -> None:
    t = table(sim, ns)

    async def scenario() -> list[dict[str, Any]]:
        async with live(sim) as conn:
            await conn.subscribe("s", f"SELECT * FROM {t}")
            sim.sql(f"BEGIN; INSERT INTO {t} (id, n) VALUES (1, 1), (2, 2); ROLLBACK")
            sim.error(
                f"BEGIN; INSERT INTO {t} (id, n) VALUES (1, 1); INSERT INTO {t} (id) VALUES (1)"
            )
            sim.error(f"BEGIN; INSERT INTO {t} (id, n) VALUES (1, 1)")
            assert [m for m in await conn.quiet() if m["type"] == "change"] == []
            sim.sql(
                f"BEGIN; INSERT INTO {t} (id, n) VALUES (3, 3); UPDATE {t} SET n = 4 WHERE id = 3; "
                f"DELETE FROM {t} WHERE id = 3; INSERT INTO {t} (id, n) VALUES (5, 5); COMMIT"
            )
            return [m for m in await conn.quiet() if m["type"] == "change"]

    got = run(scenario())
    assert [c["change_type"] for c in got] == ["insert", "update", "delete", "insert"]
    seqs = [
        int(c["rows"][0]["_seq"])
        if c["change_type"] != "delete"
        else int(c["old_values"][0]["_seq"])
        for c in got
    ]
    assert seqs == sorted(seqs)
    assert got[1]["rows"][0]["n"] == 4 and got[3]["rows"][0]["id"] == 5


def test_flush_inside_a_transaction_runs_at_once(sim: Sim, ns: str) -> None:
    t = table(sim, ns)
    sim.sql(f"INSERT INTO {t} (id, n) VALUES (1, 1)")
    res = sim.sql(
        f"BEGIN; INSERT INTO {t} (id, n) VALUES (2, 2); STORAGE FLUSH TABLE {t}; ROLLBACK"
    )
    job = res[1]["message"].split("Job ID: ")[1].strip()
    assert sim.wait_job(job)[0] == "completed"
    assert sim.rows(f"SELECT id FROM {t}") == [[1]]


def test_commits_survive_a_kill_and_rollbacks_leave_nothing(fresh_sim: Sim) -> None:
    sim = fresh_sim.start()
    sim.sql("CREATE NAMESPACE k")
    t = table(sim, "k")
    sim.sql(
        f"BEGIN; INSERT INTO {t} (id, n) VALUES (1, 1), (2, 2); UPDATE {t} SET n = 3 WHERE id = 2; "
        f"COMMIT; BEGIN; INSERT INTO {t} (id, n) VALUES (4, 4); ROLLBACK"
    )
    sim.error(f"BEGIN; INSERT INTO {t} (id, n) VALUES (5, 5)")
    sim.kill()
    sim.start()
    assert rows(sim, t) == [[1, 1, None], [2, 3, None]]


def test_torn_transaction_record_is_dropped_whole(tmp_path: Path) -> None:
    path = tmp_path / "hot.wal"
    log = WriteAheadLog(path)
    log.write(7, "", 1, Version(10, False, {1: 1}))
    log.commit([(7, "", 2, Version(11, False, {1: 2})), (7, "", 3, Version(12, False, {1: 3}))])
    log.close()
    whole = path.read_bytes()
    data = {7: TableData()}
    assert replay(path, data) == 12 and sorted(data[7].scope("").hot) == [1, 2, 3]
    path.write_bytes(whole[:-20])  # a kill in the middle of the transaction's line
    data = {7: TableData()}
    replay(path, data)
    assert sorted(data[7].scope("").hot) == [1]
