"""Where KalamDB's intent (notes/kalamdb-intent.md) fixes what the plain sim does: tombstones
and flush, SHARED cold cleanup, ADD COLUMN defaults, STREAM keys, EXECUTE AS USER, redaction.

Each test states what a client sees: HTTP replies, cold files on disk, rows after a restart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from .conftest import Sim

PW = "pw-for-tests-1"


def ids(rows: list[list[Any]]) -> list[int]:
    return sorted(int(r[0]) for r in rows)


def manifest_of(directory: Path) -> dict[str, Any] | None:
    path = directory / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


def batches(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("batch-*.parquet"))


def cold_rows(directory: Path) -> list[tuple[int, bool]]:
    out = []
    for name in batches(directory):
        out += [(r["id"], r["_deleted"]) for r in pq.read_table(directory / name).to_pylist()]
    return sorted(out)


# ---------------------------------------------------------------------------- a. flush and tombstones


def test_flush_writes_live_rows_only_and_keeps_hiding_tombstones_hot(fresh_sim: Sim) -> None:
    sim = fresh_sim.start()
    sim.sql("CREATE NAMESPACE a")
    sim.sql("CREATE SHARED TABLE a.t (id INT PRIMARY KEY, v TEXT)")
    scope = sim.data / "storage" / "a" / "t"
    sim.sql("INSERT INTO a.t (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    assert sim.flush("a.t")[0] == "completed"
    before = manifest_of(scope)
    assert before is not None and batches(scope) == ["batch-0.parquet"]

    # 2 hides a cold row; 4 never reached Parquet. The flush writes nothing at all.
    sim.sql("DELETE FROM a.t WHERE id = 2")
    sim.sql("INSERT INTO a.t (id, v) VALUES (4, 'd')")
    sim.sql("DELETE FROM a.t WHERE id = 4")
    assert sim.flush("a.t") == ["completed", "Flushed a:t successfully (0 rows, 0 files)"]
    assert manifest_of(scope) == before and batches(scope) == ["batch-0.parquet"]
    assert ids(sim.rows("SELECT id FROM a.t")) == [1, 3]
    # The tombstone of 2 is still hot: the table has pending writes, and a flush writes nothing.
    assert sim.flush("a.t") == ["completed", "Flushed a:t successfully (0 rows, 0 files)"]

    sim.sql("INSERT INTO a.t (id, v) VALUES (5, 'e')")
    sim.sql("UPDATE a.t SET v = 'c2' WHERE id = 3")
    assert sim.flush("a.t") == ["completed", "Flushed a:t successfully (2 rows, 1 files)"]
    assert cold_rows(scope) == [(1, False), (2, False), (3, False), (3, False), (5, False)]
    assert sim.rows("SELECT id, v FROM a.t ORDER BY id") == [[1, "a"], [3, "c2"], [5, "e"]]
    assert sim.rows("SELECT id FROM a.t WHERE _deleted = true") == [[2]]

    sim.kill()
    sim.start()
    assert sim.rows("SELECT id, v FROM a.t ORDER BY id") == [[1, "a"], [3, "c2"], [5, "e"]]


def test_user_table_emptied_keeps_its_cold_files(sim: Sim, ns: str) -> None:
    sim.sql(f"CREATE USER TABLE {ns}.u (id INT PRIMARY KEY, v TEXT)")
    scope = sim.data / "storage" / ns / "u" / "root"
    sim.sql(f"INSERT INTO {ns}.u (id, v) VALUES (1, 'a')")
    assert sim.flush(f"{ns}.u")[0] == "completed"
    sim.sql(f"DELETE FROM {ns}.u WHERE id = 1")
    assert sim.flush(f"{ns}.u") == ["completed", f"Flushed {ns}:u successfully (0 rows, 0 files)"]
    assert batches(scope) == ["batch-0.parquet"]  # the cleanup is for SHARED tables only
    assert sim.rows(f"SELECT id FROM {ns}.u") == []


# ---------------------------------------------------------------------------- b. SHARED cold cleanup


def test_shared_table_left_empty_loses_its_cold_segments(sim: Sim, ns: str) -> None:
    sim.sql(f"CREATE SHARED TABLE {ns}.s (id INT PRIMARY KEY, v TEXT)")
    scope = sim.data / "storage" / ns / "s"
    sim.sql(f"INSERT INTO {ns}.s (id, v) VALUES (1, 'a'), (2, 'b')")
    assert sim.flush(f"{ns}.s")[0] == "completed"
    sim.sql(f"INSERT INTO {ns}.s (id, v) VALUES (3, 'c')")
    assert sim.flush(f"{ns}.s")[0] == "completed"
    before = manifest_of(scope)
    assert before is not None and batches(scope) == ["batch-0.parquet", "batch-1.parquet"]

    sim.sql(f"DELETE FROM {ns}.s WHERE id > 0")
    assert sim.flush(f"{ns}.s")[0] == "completed"
    after = manifest_of(scope)
    assert after is not None
    assert (after["segments"], after["last_sequence_number"]) == ([], 0)
    assert after["version"] == before["version"] + 1
    assert batches(scope) == []
    assert sim.rows(f"SELECT id FROM {ns}.s") == []

    sim.sql(f"INSERT INTO {ns}.s (id, v) VALUES (4, 'd')")
    assert sim.flush(f"{ns}.s") == ["completed", f"Flushed {ns}:s successfully (1 rows, 1 files)"]
    assert batches(scope) == ["batch-0.parquet"]
    assert cold_rows(scope) == [(4, False)]
    final = manifest_of(scope)
    assert final is not None and [s["path"] for s in final["segments"]] == ["batch-0.parquet"]
    assert ids(sim.rows(f"SELECT id FROM {ns}.s")) == [4]


def test_shared_table_with_a_live_row_keeps_its_cold_segments(sim: Sim, ns: str) -> None:
    sim.sql(f"CREATE SHARED TABLE {ns}.k (id INT PRIMARY KEY, v TEXT)")
    scope = sim.data / "storage" / ns / "k"
    sim.sql(f"INSERT INTO {ns}.k (id, v) VALUES (1, 'a'), (2, 'b')")
    assert sim.flush(f"{ns}.k")[0] == "completed"
    sim.sql(f"DELETE FROM {ns}.k WHERE id = 1")
    assert sim.flush(f"{ns}.k")[0] == "completed"
    assert batches(scope) == ["batch-0.parquet"]
    assert ids(sim.rows(f"SELECT id FROM {ns}.k")) == [2]


# ---------------------------------------------------------------------------- c. ADD COLUMN defaults


def test_add_column_default_applies_to_later_inserts_only(fresh_sim: Sim) -> None:
    sim = fresh_sim.start()
    sim.sql("CREATE NAMESPACE c")
    sim.sql("CREATE USER TABLE c.t (id INT PRIMARY KEY, v TEXT)")
    sim.sql("INSERT INTO c.t (id, v) VALUES (1, 'cold')")
    assert sim.flush("c.t")[0] == "completed"
    sim.sql("INSERT INTO c.t (id, v) VALUES (2, 'hot')")
    sim.sql("ALTER TABLE c.t ADD COLUMN n INT DEFAULT 7")
    sim.sql("ALTER TABLE c.t ADD COLUMN m INT NOT NULL DEFAULT 5")
    sim.sql("INSERT INTO c.t (id, v) VALUES (3, 'new')")
    sim.sql("INSERT INTO c.t (id, v, n) VALUES (4, 'new', NULL)")
    expected = [[1, None, None], [2, None, None], [3, 7, 5], [4, None, 5]]
    query = "SELECT id, n, m FROM c.t ORDER BY id"
    assert sim.rows(query) == expected
    sim.kill()
    sim.start()
    assert sim.rows(query) == expected  # hot rows replayed from the log
    assert sim.flush("c.t")[0] == "completed"
    assert sim.rows(query) == expected
    sim.kill()
    sim.start()
    assert sim.rows(query) == expected  # cold rows read back from Parquet
    sim.sql("UPDATE c.t SET v = 'touched' WHERE id = 1")
    assert sim.rows("SELECT n, m FROM c.t WHERE id = 1") == [[None, None]]


# ---------------------------------------------------------------------------- d. STREAM keys


def test_stream_tables_accept_repeated_keys(sim: Sim, ns: str) -> None:
    sim.sql(f"CREATE STREAM TABLE {ns}.ev (id INT PRIMARY KEY, kind TEXT) WITH (TTL_SECONDS = 60)")
    assert sim.sql(f"INSERT INTO {ns}.ev (id, kind) VALUES (1, 'a'), (1, 'b')")[0] == {
        "row_count": 2,
        "message": "Inserted 2 row(s)",
        "as_user": "root",
    }
    assert sim.sql(f"INSERT INTO {ns}.ev (id, kind) VALUES (1, 'c')")[0]["row_count"] == 1
    assert sim.rows(f"SELECT id, kind FROM {ns}.ev ORDER BY _seq") == [[1, "a"], [1, "b"], [1, "c"]]
    assert sim.sql(f"DELETE FROM {ns}.ev WHERE kind = 'b'")[0]["message"] == "Deleted 1 row(s)"
    assert sim.rows(f"SELECT kind FROM {ns}.ev ORDER BY _seq") == [["a"], ["c"]]
    names = [c["name"] for c in sim.sql(f"SELECT * FROM {ns}.ev")[0]["schema"]]
    # both system columns, as on every KalamDB table (`_deleted` always false here)
    assert names == ["id", "kind", "_seq", "_deleted"]


# ---------------------------------------------------------------------------- e. EXECUTE AS USER


def test_execute_as_role_matrix(sim: Sim, ns: str) -> None:
    u, u2, s, s2, d, d2 = (f"{ns}_{n}" for n in ("u", "u2", "s", "s2", "d", "d2"))
    for name, role in ((u, "user"), (u2, "user"), (s, "service"), (s2, "service")):
        sim.create_user(name, role)
    sim.create_user(d, "dba")
    sim.create_user(d2, "dba")
    cases = [
        (u, u2, False),
        (u, s, False),
        (s, u, True),
        (s, s2, True),
        (s, d, False),
        (s, "root", False),
        (s, f"{ns}_nobody", True),  # an unknown id counts as role user
        (d, s, True),
        (d, d2, True),
        (d, "root", False),
        ("root", d, True),
    ]
    for actor, target, allowed in cases:
        password = PW if actor != "root" else None
        args = (actor, password) if password else ()
        r = sim.sql_response(f"EXECUTE AS USER '{target}' (SELECT CURRENT_USER() AS who)", *args)
        if allowed:
            assert r.status_code == 200, (actor, target, r.text)
            assert r.json()["results"][0]["rows"] == [[target]]
        else:
            assert r.status_code == 403, (actor, target, r.text)
            assert r.json()["error"]["code"] == "PERMISSION_DENIED"


def test_execute_as_on_shared_tables(sim: Sim, ns: str) -> None:
    u, s, d = f"{ns}_u", f"{ns}_s", f"{ns}_d"
    sim.create_user(u)
    sim.create_user(s, "service")
    sim.create_user(d, "dba")
    sim.sql(f"CREATE SHARED TABLE {ns}.pub (id INT PRIMARY KEY) WITH (ACCESS_LEVEL='PUBLIC')")
    sim.sql(f"CREATE SHARED TABLE {ns}.priv (id INT PRIMARY KEY)")
    sim.sql(f"INSERT INTO {ns}.pub (id) VALUES (1)")
    sim.sql(f"INSERT INTO {ns}.priv (id) VALUES (1)")

    # A wrapped SELECT runs with role user for the target: PUBLIC is readable, PRIVATE is not,
    # whatever the actor's own role.
    assert sim.rows(f"EXECUTE AS USER '{u}' (SELECT id FROM {ns}.pub)") == [[1]]
    assert sim.rows(f"EXECUTE AS USER '{u}' (SELECT id FROM {ns}.pub)", s, PW) == [[1]]
    for actor in (("root",), (s, PW), (d, PW)):
        status, err = sim.error(f"EXECUTE AS USER '{u}' (SELECT id FROM {ns}.priv)", *actor)
        assert (status, err["code"]) == (403, "PERMISSION_DENIED"), actor
    status, err = sim.error(f"EXECUTE AS USER '{d}' (SELECT id FROM {ns}.priv)")
    assert (status, err["code"]) == (403, "PERMISSION_DENIED")  # a dba target still reads as user

    refusal = (
        f"EXECUTE AS USER is not allowed on SHARED tables (table '{ns}:pub'). "
        "AS USER impersonation is only supported for USER and STREAM tables."
    )
    for dml in (
        f"INSERT INTO {ns}.pub (id) VALUES (2)",
        f"UPDATE {ns}.pub SET id = 3 WHERE id = 1",
        f"DELETE FROM {ns}.pub WHERE id = 1",
    ):
        status, err = sim.error(f"EXECUTE AS USER '{u}' ({dml})")
        assert (status, err["code"], err["message"]) == (400, "SQL_EXECUTION_ERROR", refusal)
        assert "details" in err
        status, err = sim.error(f"EXECUTE AS USER '{u}' ({dml})", s, PW)
        assert (status, err) == (
            400,
            {"code": "SQL_EXECUTION_ERROR", "message": "SQL statement failed"},
        )
        # the impersonation check comes first: service may not act as a dba
        status, err = sim.error(f"EXECUTE AS USER '{d}' ({dml})", s, PW)
        assert (status, err["code"]) == (403, "PERMISSION_DENIED")
    assert sim.rows(f"SELECT id FROM {ns}.pub") == [[1]]  # nothing was written


# ---------------------------------------------------------------------------- f. error redaction


def test_error_redaction_for_user_and_service_callers(sim: Sim, ns: str) -> None:
    u, s = f"{ns}_u", f"{ns}_s"
    sim.create_user(u)
    sim.create_user(s, "service")
    sim.sql(f"CREATE USER TABLE {ns}.t (id INT PRIMARY KEY, v TEXT NOT NULL)")
    sim.sql(f"CREATE STREAM TABLE {ns}.ev (id INT PRIMARY KEY) WITH (TTL_SECONDS = 60)")
    sim.sql(f"CREATE SHARED TABLE {ns}.sh (id INT PRIMARY KEY)")
    sim.sql(f"INSERT INTO {ns}.t (id, v) VALUES (1, 'a')")
    for who in (u, s):
        sim.sql(f"INSERT INTO {ns}.t (id, v) VALUES (1, 'a')", who, PW)
    redacted = "SQL statement failed"
    cases: list[tuple[str, str, str | None]] = [
        # (statement, code, a part of the message non-admins keep, or None if redacted)
        (f"INSERT INTO {ns}.t (id, v) VALUES (1, 'b')", "SQL_EXECUTION_ERROR", "Primary key"),
        (f"INSERT INTO {ns}.t (id) VALUES (2)", "SQL_EXECUTION_ERROR", "constraint violation"),
        (f"SELECT nope FROM {ns}.t", "SQL_EXECUTION_ERROR", "No field named"),
        (f"INSERT INTO {ns}.t (id, nope) VALUES (2, 1)", "SQL_EXECUTION_ERROR", "not found"),
        (f"UPDATE {ns}.t SET id = 2 WHERE id = 1", "SQL_EXECUTION_ERROR", "primary key"),
        ("SELECT * FROM system.users", "PERMISSION_DENIED", "Access denied"),
        ("SELEC 1", "INVALID_SQL", "SELEC 1"),
        (f"SELECT * FROM {ns}.missing", "SQL_EXECUTION_ERROR", None),
        (f"DELETE FROM {ns}.t", "SQL_EXECUTION_ERROR", None),
        (f"UPDATE {ns}.t SET v = 'x'", "SQL_EXECUTION_ERROR", None),
        (f"UPDATE {ns}.ev SET id = 2 WHERE id = 1", "SQL_EXECUTION_ERROR", None),
        (f"INSERT INTO {ns}.t (id, v) VALUES ('abc', 'x')", "SQL_EXECUTION_ERROR", None),
    ]
    for sql, code, kept in cases:
        status_for_all = 403 if code == "PERMISSION_DENIED" else 400
        if code != "PERMISSION_DENIED":  # admins may read system tables
            admin = sim.error(sql)[1]
            assert (admin["code"], admin["details"]) == (code, sql), sql
        for who in (u, s):
            status, err = sim.error(sql, who, PW)
            assert (status, err["code"]) == (status_for_all, code), (sql, who)
            assert "details" not in err, (sql, who)
            if kept is None:
                assert err["message"] == redacted, (sql, who)
            else:
                assert kept.lower() in err["message"].lower(), (sql, who, err)
                assert err["message"] != redacted
    # the EXECUTE AS refusal on SHARED is redacted too, for the service actor that may issue it
    status, err = sim.error(f"EXECUTE AS USER '{u}' (INSERT INTO {ns}.sh (id) VALUES (1))", s, PW)
    assert err == {"code": "SQL_EXECUTION_ERROR", "message": redacted}
