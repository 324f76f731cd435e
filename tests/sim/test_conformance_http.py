"""The sim speaks KalamDB's HTTP API: auth, SQL dialect, result shapes, tiers, restart, bad input."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .conftest import ROOT_PASSWORD, Sim


def test_health_and_status(sim: Sim) -> None:
    body = sim.http.get("/health").json()
    assert body["status"] == "healthy" and body["api_version"] == "v1"
    assert sim.http.get("/v1/api/healthcheck").status_code == 200
    assert sim.http.get("/v1/api/auth/status").json()["needs_setup"] is False


def test_first_run_setup_flow(fresh_sim: Sim) -> None:
    fresh_sim.env.pop("KALAMDB_ROOT_PASSWORD")
    fresh_sim.start()
    http = fresh_sim.http
    assert http.get("/v1/api/auth/status").json()["needs_setup"] is True
    r = http.post("/v1/api/auth/login", json={"user": "root", "password": ""})
    assert r.status_code == 428 and r.json()["error"] == "setup_required"
    r = http.post(
        "/v1/api/auth/setup",
        json={"user": "admin", "password": "short", "root_password": "Root-pw-12345"},
    )
    assert r.status_code == 400 and r.json()["error"] == "weak_password"
    r = http.post(
        "/v1/api/auth/setup",
        json={"user": "admin", "password": "Admin-pw-12345", "root_password": "Root-pw-12345"},
    )
    assert r.status_code == 200, r.text
    assert (
        http.post(
            "/v1/api/auth/setup",
            json={"user": "a2", "password": "Admin-pw-12345", "root_password": "x" * 9},
        ).status_code
        == 409
    )
    r = http.post("/v1/api/auth/login", json={"user": "admin", "password": "Admin-pw-12345"})
    assert r.status_code == 200 and r.json()["user"]["role"] == "dba"
    assert fresh_sim.rows("SELECT CURRENT_USER() AS u", "root", "Root-pw-12345") == [["root"]]


def test_login_refresh_and_bad_credentials(sim: Sim) -> None:
    http = sim.http
    assert (
        http.post(
            "/v1/api/auth/login", json={"user": "root", "password": "wrong-password"}
        ).status_code
        == 401
    )
    body = http.post("/v1/api/auth/login", json={"user": "root", "password": ROOT_PASSWORD}).json()
    assert (
        body["user"] == {**body["user"], "id": "root", "role": "system"}
        and body["admin_ui_access"] is True
    )
    refreshed = http.post(
        "/v1/api/auth/refresh", headers={"Authorization": f"Bearer {body['refresh_token']}"}
    )
    assert refreshed.status_code == 200 and refreshed.json()["access_token"]
    assert (
        http.post(
            "/v1/api/auth/refresh", headers={"Authorization": f"Bearer {body['access_token']}"}
        ).status_code
        == 401
    )
    me = http.get(
        "/v1/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    ).json()
    assert me["user"]["id"] == "root"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "MISSING_AUTHORIZATION"),
        (
            {
                "Authorization": "Basic "
                + base64.b64encode(f"root:{ROOT_PASSWORD}".encode()).decode()
            },
            "INVALID_CREDENTIALS",
        ),
        ({"Authorization": "Bearer not-a-jwt"}, "INVALID_CREDENTIALS"),
    ],
)
def test_sql_requires_bearer(sim: Sim, headers: dict[str, str], code: str) -> None:
    r = sim.http.post("/v1/api/sql", json={"sql": "SELECT 1"}, headers=headers)
    assert r.status_code == 401
    assert r.json()["status"] == "error" and r.json()["error"]["code"] == code


def test_expired_token(fresh_sim: Sim) -> None:
    fresh_sim.env["KALAMDB_JWT_EXPIRY_HOURS"] = "0.0003"  # ~1 s
    fresh_sim.start()
    token = fresh_sim.token()
    time.sleep(2.2)
    r = fresh_sim.http.post(
        "/v1/api/sql", json={"sql": "SELECT 1"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "TOKEN_EXPIRED"


def test_dml_roundtrip_and_result_shapes(sim: Sim, ns: str) -> None:
    sim.sql(
        f"CREATE TABLE {ns}.m (id BIGINT PRIMARY KEY, body TEXT NOT NULL, n INT, at TIMESTAMP) WITH (TYPE='USER')"
    )
    res = sim.sql(
        f"INSERT INTO {ns}.m (id, body, n, at) VALUES (1, 'a', 10, '2024-01-01T00:00:00Z'), (2, 'b', NULL, NULL)"
    )
    assert res == [{"row_count": 2, "message": "Inserted 2 row(s)", "as_user": "root"}]
    result = sim.sql(f"SELECT * FROM {ns}.m ORDER BY id")[0]
    names = [c["name"] for c in result["schema"]]
    assert names == ["id", "body", "n", "at", "_seq", "_deleted"]
    assert result["schema"][0] == {
        "name": "id",
        "data_type": "BigInt",
        "index": 0,
        "flags": ["nn", "pk", "uq"],
    }
    row = result["rows"][0]
    assert row[0] == "1" and row[2] == 10 and row[3] == 1704067200000000
    assert isinstance(row[4], str) and int(row[4]) > 0 and row[5] is False
    assert (
        sim.sql(f"UPDATE {ns}.m SET n = n + 1 WHERE body LIKE 'a%' OR n IS NULL")[0]["row_count"]
        == 1
    )
    assert (
        sim.sql(f"UPDATE {ns}.m SET n = 11 WHERE id = 1")[0]["row_count"] == 0
    )  # no-op is not counted
    assert sim.sql(f"DELETE FROM {ns}.m WHERE id IN (2, 3)")[0]["message"] == "Deleted 1 row(s)"
    assert sim.rows(f"SELECT id, n FROM {ns}.m") == [["1", 11]]
    assert sim.rows(f"SELECT id, _deleted FROM {ns}.m WHERE _deleted = true") == [["2", True]]
    assert sim.rows(
        f"SELECT COUNT(*) AS c, MAX(n) AS m FROM {ns}.m WHERE id BETWEEN 0 AND 5 AND NOT (n < 0)"
    ) == [["1", 11]]
    sim.sql(f"INSERT INTO {ns}.m (id, body) VALUES (2, 'again')")  # a deleted key may come back
    assert sim.rows(f"SELECT body FROM {ns}.m WHERE id = 2") == [["again"]]


def test_statement_errors(sim: Sim, ns: str) -> None:
    sim.sql(f"CREATE TABLE {ns}.e (id INT PRIMARY KEY, v TEXT NOT NULL) WITH (TYPE='USER')")
    sim.sql(f"INSERT INTO {ns}.e (id, v) VALUES (1, 'x')")
    status, err = sim.error(f"INSERT INTO {ns}.e (id, v) VALUES (1, 'y')")
    assert (
        status == 400
        and err["code"] == "SQL_EXECUTION_ERROR"
        and "Primary key violation" in err["message"]
    )
    status, err = sim.error(f"INSERT INTO {ns}.e (id, v) VALUES (5, 'a'), (5, 'b')")
    assert "appears multiple times" in err["message"]
    assert sim.rows(f"SELECT COUNT(*) FROM {ns}.e") == [
        ["1"]
    ]  # nothing of the failed batch was written
    assert sim.error(f"UPDATE {ns}.e SET v = 'z'")[1]["message"].endswith(
        "UPDATE requires a WHERE clause"
    )
    assert "DELETE requires a WHERE clause" in sim.error(f"DELETE FROM {ns}.e")[1]["message"]
    assert (
        "cannot modify primary key"
        in sim.error(f"UPDATE {ns}.e SET id = 2 WHERE id = 1")[1]["message"]
    )
    assert sim.error(f"SELECT * FROM {ns}.missing")[1]["code"] == "SQL_EXECUTION_ERROR"
    assert sim.error("SELEC 1")[1]["code"] == "INVALID_SQL"
    assert sim.error(f"SELECT nope FROM {ns}.e")[1]["code"] == "SQL_EXECUTION_ERROR"
    assert (
        "Cast error" in sim.error(f"INSERT INTO {ns}.e (id, v) VALUES ('abc', 'x')")[1]["message"]
    )
    assert "cannot be null" in sim.error(f"INSERT INTO {ns}.e (id) VALUES (9)")[1]["message"]
    assert sim.error("")[1]["code"] == "EMPTY_SQL"
    assert sim.error("SELECT $1; SELECT 2", params=[1])[1]["code"] == "PARAMS_WITH_BATCH"
    assert sim.error("SELECT $2", params=[1])[1]["code"] == "INVALID_PARAMETER"
    assert sim.error("SELECT 1 " + " " * (1024 * 1024))[1]["message"] == "SQL query too long"


def test_bad_bodies(sim: Sim) -> None:
    headers = {"Authorization": f"Bearer {sim.token()}", "Content-Type": "application/json"}
    r = sim.http.post("/v1/api/sql", content=b"{not json", headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_INPUT"
    r = sim.http.post("/v1/api/sql", json={"query": "SELECT 1"}, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_INPUT"
    r = sim.http.post("/v1/api/sql", content=b"x" * (5 * 1024 * 1024), headers=headers)
    assert r.status_code == 413
    assert sim.http.get("/health").status_code == 200  # still alive


def test_row_caps_params_and_namespace(sim: Sim, ns: str) -> None:
    sim.sql(f"CREATE SHARED TABLE {ns}.big (id INT PRIMARY KEY, v TEXT)")
    values = ", ".join(f"({i}, 'v{i}')" for i in range(1100))
    sim.sql(f"INSERT INTO {ns}.big (id, v) VALUES {values}")
    assert len(sim.rows(f"SELECT id FROM {ns}.big")) == 50
    assert len(sim.rows(f"SELECT id FROM {ns}.big LIMIT 5000")) == 1000
    assert sim.rows(
        "SELECT v FROM big WHERE id = $1 AND v = $2", params=[7, "v7"], namespace_id=ns
    ) == [["v7"]]


def test_multi_statement_folding(sim: Sim, ns: str) -> None:
    results = sim.sql(
        f"CREATE SHARED TABLE {ns}.f (id INT PRIMARY KEY, v TEXT); INSERT INTO {ns}.f (id, v) VALUES (1, 'a');"
        f" INSERT INTO {ns}.f (id, v) VALUES (2, 'b'), (3, 'c'); SELECT COUNT(*) AS c FROM {ns}.f; "
        f"UPDATE {ns}.f SET v = 'z' WHERE id > 1"
    )
    assert results[0]["message"].startswith("CREATE TABLE")
    assert results[1]["rows"] == [["3"]]
    assert [(r["message"], r["row_count"]) for r in results[2:]] == [
        ("Inserted 3 row(s)", 3),
        ("Updated 2 row(s)", 2),
    ]
    # an error mid-batch keeps what ran before it
    status, _ = sim.error(
        f"INSERT INTO {ns}.f (id, v) VALUES (10, 'x'); INSERT INTO {ns}.f (id, v) VALUES (1, 'dup')"
    )
    assert status == 400 and sim.rows(f"SELECT v FROM {ns}.f WHERE id = 10") == [["x"]]


def test_user_isolation_and_execute_as(sim: Sim, ns: str) -> None:
    sim.create_user(f"{ns}_a")
    sim.create_user(f"{ns}_b")
    sim.create_user(f"{ns}_svc", role="service")
    a, b, svc = f"{ns}_a", f"{ns}_b", f"{ns}_svc"
    pw = "pw-for-tests-1"
    sim.sql(
        f"CREATE TABLE {ns}.msgs (id INT PRIMARY KEY, who TEXT DEFAULT CURRENT_USER()) WITH (TYPE='USER')"
    )
    sim.sql(f"INSERT INTO {ns}.msgs (id) VALUES (1)", a, pw)
    sim.sql(f"EXECUTE AS USER '{b}' (INSERT INTO {ns}.msgs (id) VALUES (2))", svc, pw)
    assert sim.rows(f"SELECT id, who FROM {ns}.msgs", a, pw) == [[1, a]]
    assert sim.rows(f"SELECT id, who FROM {ns}.msgs", b, pw) == [[2, b]]
    assert sim.rows(f"SELECT id FROM {ns}.msgs") == []  # root sees only its own partition
    assert sim.rows(f"EXECUTE AS USER '{a}' (SELECT id FROM {ns}.msgs)") == [[1]]
    status, err = sim.error(f"EXECUTE AS USER '{b}' (SELECT id FROM {ns}.msgs)", a, pw)
    assert status == 403 and err["code"] == "PERMISSION_DENIED"
    assert sim.error("EXECUTE AS USER 'root' (SELECT 1)", svc, pw)[0] == 403
    assert sim.sql(f"EXECUTE AS USER '{a}' (SELECT CURRENT_USER() AS u)")[0]["as_user"] == a


def test_rbac_matrix(sim: Sim, ns: str) -> None:
    user, svc, dba = f"{ns}_u", f"{ns}_s", f"{ns}_d"
    sim.create_user(user)
    sim.create_user(svc, role="service")
    sim.create_user(dba, role="dba")
    pw = "pw-for-tests-1"
    sim.sql(
        f"CREATE SHARED TABLE {ns}.pub (id INT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL='PUBLIC')"
    )
    sim.sql(f"CREATE SHARED TABLE {ns}.priv (id INT PRIMARY KEY, v TEXT)")
    sim.sql(f"INSERT INTO {ns}.pub (id, v) VALUES (1, 'p')")
    assert sim.rows(f"SELECT v FROM {ns}.pub", user, pw) == [["p"]]
    for sql in (
        f"INSERT INTO {ns}.pub (id, v) VALUES (2, 'x')",
        f"SELECT * FROM {ns}.priv",
        f"CREATE NAMESPACE {ns}x",
        "SELECT * FROM system.users",
        f"STORAGE FLUSH TABLE {ns}.pub",
        f"DROP TABLE {ns}.pub",
        f"CREATE USER {ns}_z WITH PASSWORD 'pw-for-tests-1' ROLE user",
    ):
        status, err = sim.error(sql, user, pw)
        assert (status, err["code"]) == (403, "PERMISSION_DENIED"), sql
    assert sim.rows(f"SELECT v FROM {ns}.pub", user, pw) == [
        ["p"]
    ]  # the denied insert changed nothing
    sim.sql(f"INSERT INTO {ns}.priv (id, v) VALUES (1, 's')", svc, pw)
    assert sim.rows(f"SELECT v FROM {ns}.priv", svc, pw) == [["s"]]
    assert sim.error(f"DROP TABLE {ns}.priv", svc, pw)[0] == 403
    assert sim.rows("SELECT COUNT(*) FROM system.users", dba, pw)[0][0] != "0"
    # non-admins get redacted execution errors, admins the real text and the statement
    assert sim.error(f"SELECT * FROM {ns}.nope", user, pw)[1] == {
        "code": "SQL_EXECUTION_ERROR",
        "message": "SQL statement failed",
    }
    assert "details" in sim.error(f"SELECT * FROM {ns}.nope")[1]


def test_join_user_with_shared(sim: Sim, ns: str) -> None:
    sim.sql(f"CREATE TABLE {ns}.orders (id INT PRIMARY KEY, product INT) WITH (TYPE='USER')")
    sim.sql(f"CREATE SHARED TABLE {ns}.products (id INT PRIMARY KEY, name TEXT)")
    sim.sql(f"INSERT INTO {ns}.products (id, name) VALUES (1, 'apple'), (2, 'pear')")
    sim.sql(f"INSERT INTO {ns}.orders (id, product) VALUES (10, 2), (11, 1)")
    rows = sim.rows(
        f"SELECT o.id, p.name FROM {ns}.orders o JOIN {ns}.products p ON o.product = p.id ORDER BY o.id"
    )
    assert rows == [[10, "pear"], [11, "apple"]]


def test_flush_writes_manifest_and_parquet(sim: Sim, ns: str) -> None:
    sim.sql(f"CREATE TABLE {ns}.t (id INT PRIMARY KEY, v TEXT) WITH (TYPE='USER')")
    sim.sql(f"INSERT INTO {ns}.t (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    sim.sql(f"UPDATE {ns}.t SET v = 'bb' WHERE id = 2")
    before = sim.rows(f"SELECT id, v FROM {ns}.t ORDER BY id")
    status, message = sim.flush(f"{ns}.t")
    assert status == "completed", message
    assert sim.rows(f"SELECT id, v FROM {ns}.t ORDER BY id") == before
    scope = sim.data / "storage" / ns / "t" / "root"
    manifest = json.loads((scope / "manifest.json").read_text())
    assert manifest["table_id"] == f"{ns}.t" and manifest["user_id"] == "root"
    seg = manifest["segments"][0]
    assert (
        seg["path"] == "batch-0.parquet" and seg["status"] == "committed" and seg["row_count"] == 3
    )
    table = pq.read_table(scope / "batch-0.parquet")
    assert table.column_names == ["id", "v", "_seq", "_deleted"]
    assert sorted(table.column("v").to_pylist()) == ["a", "bb", "c"]
    assert seg["min_seq"] == min(table.column("_seq").to_pylist())
    # PK uniqueness holds across tiers; a hot update shadows the cold version
    assert (
        "Primary key violation"
        in sim.error(f"INSERT INTO {ns}.t (id, v) VALUES (1, 'dup')")[1]["message"]
    )
    sim.sql(f"UPDATE {ns}.t SET v = 'A' WHERE id = 1")
    sim.sql(f"DELETE FROM {ns}.t WHERE id = 3")
    assert sim.rows(f"SELECT id, v FROM {ns}.t ORDER BY id") == [[1, "A"], [2, "bb"]]
    sim.flush(f"{ns}.t")
    assert sim.rows(f"SELECT id, v FROM {ns}.t ORDER BY id") == [
        [1, "A"],
        [2, "bb"],
    ]  # no resurrection
    manifest = json.loads((scope / "manifest.json").read_text())
    assert [s["path"] for s in manifest["segments"]] == ["batch-0.parquet", "batch-1.parquet"]
    assert pq.read_table(scope / "batch-1.parquet").to_pylist() == [
        {"id": 1, "v": "A", "_seq": manifest["segments"][1]["min_seq"], "_deleted": False}
    ]  # Parquet holds live rows only: the tombstone of 3 stays hot, hiding 3 in batch-0
    assert not list(scope.glob("*.tmp"))
    # A scope whose hot tier is that tombstone alone still has pending writes (KalamDB keeps it
    # PendingWrite): every flush starts a job that writes nothing.
    assert sim.flush(f"{ns}.t") == ["completed", f"Flushed {ns}:t successfully (0 rows, 0 files)"]
    assert json.loads((scope / "manifest.json").read_text()) == manifest
    sim.sql(f"INSERT INTO {ns}.t (id, v) VALUES (3, 'again')")
    assert sim.flush(f"{ns}.t")[0] == "completed"  # the new 3 shadows batch-0: the tombstone goes
    message = sim.sql(f"STORAGE FLUSH TABLE {ns}.t")[0]["message"]
    assert message == f"Storage flush skipped: no pending writes for table '{ns}.t'"
    assert sim.rows(f"SELECT id, v FROM {ns}.t ORDER BY id") == [[1, "A"], [2, "bb"], [3, "again"]]


def test_flush_respects_storage_and_templates(sim: Sim, ns: str, tmp_path: Path) -> None:
    base = tmp_path / "s2"
    sim.sql(
        f"CREATE STORAGE {ns}_st TYPE 'filesystem' BASE_DIRECTORY '{base}' SHARED_TABLES_TEMPLATE 'shared/{{namespace}}/{{tableName}}'"
    )
    sim.sql(f"CREATE SHARED TABLE {ns}.c (id INT PRIMARY KEY) WITH (STORAGE_ID='{ns}_st')")
    sim.sql(f"INSERT INTO {ns}.c (id) VALUES (1)")
    assert sim.flush(f"{ns}.c")[0] == "completed"
    assert (base / "shared" / ns / "c" / "manifest.json").exists()
    assert not (sim.data / "storage" / ns / "c").exists()
    assert sim.rows(
        f"SELECT storage_id FROM system.tables WHERE table_name = 'c' AND namespace_id = '{ns}'"
    ) == [[f"{ns}_st"]]


def test_failed_flush_then_retry(sim: Sim, ns: str, tmp_path: Path) -> None:
    base = tmp_path / "fail"
    sim.sql(f"CREATE STORAGE {ns}_f TYPE 'filesystem' BASE_DIRECTORY '{base}'")
    sim.sql(f"CREATE TABLE {ns}.x (id INT PRIMARY KEY) WITH (TYPE='USER', STORAGE_ID='{ns}_f')")
    sim.sql(f"INSERT INTO {ns}.x (id) VALUES (1), (2)")
    base.rmdir()
    base.write_text("not a directory")
    status, message = sim.flush(f"{ns}.x")
    assert status == "failed" and message
    assert sim.rows(f"SELECT COUNT(*) FROM {ns}.x") == [["2"]]
    base.unlink()
    base.mkdir()
    assert sim.flush(f"{ns}.x")[0] == "completed"
    files = sorted(p.name for p in base.rglob("*") if p.is_file())
    assert files == ["batch-0.parquet", "manifest.json"]
    assert pq.read_table(next(base.rglob("batch-0.parquet"))).num_rows == 2


def test_stream_tables(sim: Sim, ns: str) -> None:
    sim.sql(f"CREATE STREAM TABLE {ns}.ev (id INT PRIMARY KEY, kind TEXT) WITH (TTL_SECONDS = 1)")
    sim.sql(f"INSERT INTO {ns}.ev (id, kind) VALUES (1, 'a'), (2, 'b')")
    assert sim.rows(f"SELECT id FROM {ns}.ev ORDER BY id") == [[1], [2]]
    assert (
        "not supported for STREAM"
        in sim.error(f"UPDATE {ns}.ev SET kind = 'z' WHERE id = 1")[1]["message"]
    )
    assert "not supported for STREAM" in sim.error(f"STORAGE FLUSH TABLE {ns}.ev")[1]["message"]
    sim.sql(f"DELETE FROM {ns}.ev WHERE id = 1")
    assert sim.rows(f"SELECT id FROM {ns}.ev") == [[2]]  # a hard delete
    assert [c["name"] for c in sim.sql(f"SELECT * FROM {ns}.ev")[0]["schema"]] == [
        "id",
        "kind",
        "_seq",
        "_deleted",
    ]
    time.sleep(1.2)
    assert sim.rows(f"SELECT id FROM {ns}.ev") == []
    assert (
        "TTL_SECONDS"
        in sim.error(f"CREATE STREAM TABLE {ns}.ev2 (id INT PRIMARY KEY)")[1]["message"]
    )


def test_schema_evolution(sim: Sim, ns: str) -> None:
    sim.sql(f"CREATE TABLE {ns}.s (id INT PRIMARY KEY, a TEXT, b INT) WITH (TYPE='USER')")
    sim.sql(f"INSERT INTO {ns}.s (id, a, b) VALUES (1, 'x', 5)")
    sim.flush(f"{ns}.s")
    sim.sql(f"INSERT INTO {ns}.s (id, a, b) VALUES (2, 'y', 6)")
    sim.sql(f"ALTER TABLE {ns}.s ADD COLUMN c INT DEFAULT 7")
    sim.sql(f"ALTER TABLE {ns}.s ADD COLUMN d TEXT")
    # a DEFAULT is not retroactive: rows written before the ALTER read NULL
    assert sim.rows(f"SELECT id, c, d FROM {ns}.s ORDER BY id") == [
        [1, None, None],
        [2, None, None],
    ]
    sim.sql(f"INSERT INTO {ns}.s (id, a, b) VALUES (3, 'z', 8)")
    assert sim.rows(f"SELECT c FROM {ns}.s WHERE id = 3") == [[7]]
    sim.sql(f"ALTER TABLE {ns}.s DROP COLUMN b")
    assert sim.rows(f"SELECT * FROM {ns}.s ORDER BY id")[0][:4] == [1, "x", None, None]
    assert sim.error(f"SELECT b FROM {ns}.s")[1]["code"] == "SQL_EXECUTION_ERROR"
    sim.sql(f"ALTER TABLE {ns}.s ADD COLUMN b INT")
    assert sim.rows(f"SELECT id, b FROM {ns}.s ORDER BY id") == [[1, None], [2, None], [3, None]]
    sim.flush(f"{ns}.s")
    assert sim.rows(f"SELECT id, a, c FROM {ns}.s ORDER BY id") == [
        [1, "x", None],
        [2, "y", None],
        [3, "z", 7],
    ]


def test_system_tables_and_users(sim: Sim, ns: str) -> None:
    sim.create_user(f"{ns}_v", role="viewer")
    assert sim.rows(f"SELECT role FROM system.users WHERE user_id = '{ns}_v'") == [["user"]]
    sim.sql(f"ALTER USER {ns}_v SET ROLE service")
    assert sim.rows(f"SELECT role FROM system.users WHERE user_id = '{ns}_v'") == [["service"]]
    sim.sql(f"DROP USER {ns}_v")
    assert (
        sim.http.post(
            "/v1/api/auth/login", json={"user": f"{ns}_v", "password": "pw-for-tests-1"}
        ).status_code
        == 401
    )
    assert sim.rows(f"SELECT namespace_id FROM system.namespaces WHERE namespace_id = '{ns}'") == [
        [ns]
    ]
    assert sim.rows("SELECT storage_id FROM system.storages WHERE storage_id = 'local'") == [
        ["local"]
    ]


def test_restart_after_kill_keeps_acknowledged_writes(fresh_sim: Sim) -> None:
    sim = fresh_sim.start()
    sim.sql("CREATE NAMESPACE k")
    sim.sql("CREATE TABLE k.t (id INT PRIMARY KEY, v TEXT) WITH (TYPE='USER')")
    sim.sql("INSERT INTO k.t (id, v) VALUES (1, 'cold')")
    sim.flush("k.t")
    for i in range(2, 40):
        sim.sql(f"INSERT INTO k.t (id, v) VALUES ({i}, 'hot')")
    sim.sql("UPDATE k.t SET v = 'changed' WHERE id = 1")
    sim.sql("DELETE FROM k.t WHERE id = 2")
    expected = sim.rows("SELECT id, v FROM k.t ORDER BY id LIMIT 100")
    sim.kill()
    sim.start()
    assert sim.rows("SELECT id, v FROM k.t ORDER BY id LIMIT 100") == expected
    sim.sql("INSERT INTO k.t (id, v) VALUES (100, 'after')")
    assert sim.stop() == 0  # SIGINT is graceful
    sim.start()
    assert sim.rows("SELECT v FROM k.t WHERE id = 100") == [["after"]]


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "bad.toml"
    config.write_text("[server]\nport = 'eighty'\n")
    out = subprocess.run(
        [sys.executable, "-m", "kalamfuzz.sim", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "port" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "kalamfuzz.sim", str(config)],
        capture_output=True,
        text=True,
        env={"KALAMSIM_BUGS": "no_such_bug", "PATH": ""},
        timeout=60,
    )
    assert out.returncode == 2
    listed = subprocess.run(
        [sys.executable, "-m", "kalamfuzz.sim", "--list-bugs"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(listed.stdout.splitlines()) >= 15
