"""SqlClient against a launched server (sim by default)."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from kalamfuzz.adapters import SqlClient, Target, observe, scope_rows
from kalamfuzz.adapters.sql import SqlClient as _SqlClient
from kalamfuzz.errors import AuthError, ConfigError, PermissionDenied, SqlError


def test_login_health_status_me(target: Target, admin: SqlClient) -> None:
    assert admin.role == "system"
    assert admin.health()["status"] == "healthy"
    assert admin.auth_status()["needs_setup"] is False
    assert admin.me()["user"]["id"] == target.user
    assert admin.token and admin.token not in repr(admin)


def test_wrong_credentials(target: Target) -> None:
    with pytest.raises(AuthError) as info:
        _SqlClient(target.url, "root", "definitely-wrong-pw")
    assert info.value.status == 401 and "KALAMFUZZ_PASSWORD" in str(info.value)


def test_typed_values_round_trip(admin: SqlClient, ns: str) -> None:
    admin.create_table(
        f"{ns}.vals",
        "id BIGINT PRIMARY KEY, n INT, d DOUBLE, b BOOLEAN, t TEXT, ts TIMESTAMP, j JSON",
        table_type="SHARED",
    )
    big = 9_007_199_254_740_993  # > 2**53: survives only as a string
    admin.sql(
        f"INSERT INTO {ns}.vals (id, n, d, b, t, ts, j) VALUES ($1, 7, 1.5, true, 'x', 1700000000123456, '{{\"k\": [1]}}')",
        params=[str(big)],
    )
    res = admin.sql(f"SELECT id, n, d, b, t, ts, j, _seq FROM {ns}.vals").result
    row = res.dicts()[0]
    assert row["id"] == big and row["n"] == 7 and row["d"] == 1.5 and row["b"] is True
    assert row["t"] == "x" and row["j"] == {"k": [1]}
    assert row["ts"] == dt.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=dt.UTC)
    assert isinstance(row["_seq"], int) and row["_seq"] > 0
    assert res.raw_rows[0][0] == str(big)
    types = {c.name: c.data_type for c in res.columns}
    assert types["id"] == "BigInt" and types["ts"] == "Timestamp"
    assert [c.name for c in res.columns if c.is_pk] in (["id"], [])
    _ = decimal  # DECIMAL is covered by the unit tests


def test_statement_errors_carry_status_code_statement(
    admin: SqlClient, alice: tuple[str, SqlClient], ns: str
) -> None:
    admin.create_table(f"{ns}.t", "id INT PRIMARY KEY, body TEXT", table_type="SHARED")
    admin.sql(f"INSERT INTO {ns}.t (id, body) VALUES (1, 'a')")
    with pytest.raises(SqlError) as dup:
        admin.sql(f"INSERT INTO {ns}.t (id, body) VALUES (1, 'b')")
    assert (dup.value.status, dup.value.code) == (400, "SQL_EXECUTION_ERROR")
    assert "Primary key violation" in dup.value.message
    assert dup.value.statement == f"INSERT INTO {ns}.t (id, body) VALUES (1, 'b')"
    with pytest.raises(SqlError) as bad:
        admin.sql("SELCT 1")
    assert bad.value.code == "INVALID_SQL"
    with pytest.raises(SqlError) as missing:
        admin.sql(f"SELECT * FROM {ns}.nope")
    assert missing.value.code == "SQL_EXECUTION_ERROR"
    with pytest.raises(PermissionDenied) as denied:
        alice[1].sql("CREATE NAMESPACE kf_forbidden")
    assert (denied.value.status, denied.value.code) == (403, "PERMISSION_DENIED")


def test_multi_statement_results_are_folded(admin: SqlClient, ns: str) -> None:
    admin.create_table(f"{ns}.m", "id INT PRIMARY KEY, v INT", table_type="SHARED")
    res = admin.sql(
        f"INSERT INTO {ns}.m (id, v) VALUES (1, 1); INSERT INTO {ns}.m (id, v) VALUES (2, 2); "
        f"SELECT COUNT(*) AS n FROM {ns}.m; UPDATE {ns}.m SET v = 5 WHERE id = 1"
    )
    assert (res.inserted, res.updated, res.deleted) == (2, 1, 0)
    assert res.results[0].scalar() == 2
    assert [r.message for r in res.results[1:]] == ["Inserted 2 row(s)", "Updated 1 row(s)"]


def test_params_namespace_and_helpers(admin: SqlClient, ns: str) -> None:
    admin.create_table(f"{ns}.p", "id INT PRIMARY KEY, body TEXT", table_type="SHARED")
    admin.sql("INSERT INTO p (id, body) VALUES ($1, $2)", params=[1, "it's"], namespace=ns)
    assert (
        admin.sql("SELECT body FROM p WHERE id = $1", params=[1], namespace=ns).scalar() == "it's"
    )
    tables = admin.tables(ns)
    assert [(t.table_name, t.table_type) for t in tables] == [("p", "shared")]
    assert tables[0].qualified_name == f"{ns}.p"
    with pytest.raises(ConfigError):
        admin.create_namespace("bad name")


def test_row_caps_and_query_all(admin: SqlClient, ns: str) -> None:
    admin.create_table(f"{ns}.many", "id INT PRIMARY KEY", table_type="SHARED")
    for start in range(0, 1100, 275):
        values = ", ".join(f"({i})" for i in range(start, start + 275))
        admin.sql(f"INSERT INTO {ns}.many (id) VALUES {values}")
    assert len(admin.sql(f"SELECT id FROM {ns}.many").rows) == 50
    assert len(admin.sql(f"SELECT id FROM {ns}.many LIMIT 5000").rows) == 1000
    everything = admin.query_all(f"SELECT id FROM {ns}.many", "id")
    assert everything.column("id") == list(range(1100)) and everything.row_count == 1100
    assert admin.query_all(f"SELECT id FROM {ns}.many WHERE id < 3", "id", page_size=2).column(
        "id"
    ) == [0, 1, 2]


def test_execute_as_writes_into_the_users_partition(
    admin: SqlClient, alice: tuple[str, SqlClient], ns: str
) -> None:
    name, client = alice
    admin.create_table(f"{ns}.notes", "id INT PRIMARY KEY, body TEXT", table_type="USER")
    res = admin.execute_as(name, f"INSERT INTO {ns}.notes (id, body) VALUES (1, 'for alice');")
    assert res.result.as_user == name
    assert client.sql(f"SELECT id, body FROM {ns}.notes").dicts() == [
        {"id": 1, "body": "for alice"}
    ]
    assert admin.sql(f"SELECT id FROM {ns}.notes").rows == ()
    assert admin.query_all(f"SELECT id, body FROM {ns}.notes", "id", as_user=name).dicts() == [
        {"id": 1, "body": "for alice"}
    ]


def test_flush_job_and_cold_artifacts(
    target: Target, admin: SqlClient, alice: tuple[str, SqlClient], ns: str
) -> None:
    name, _ = alice
    admin.create_table(f"{ns}.cold", "id INT PRIMARY KEY, body TEXT", table_type="USER")
    admin.execute_as(name, f"INSERT INTO {ns}.cold (id, body) VALUES (1, 'a'), (2, 'b')")
    job = admin.flush(f"{ns}.cold", timeout=30)
    assert job is not None and job.job_id.startswith("FL-")
    assert job.status == "completed" and job.job_type == "flush" and job.table_id == f"{ns}.cold"
    assert admin.job(job.job_id) == job
    assert any(j.job_id == job.job_id for j in admin.jobs(job_type="flush"))
    assert admin.flush(f"{ns}.cold") is None  # nothing pending any more
    if target.skip_reason("data_dir"):
        pytest.skip(target.skip_reason("data_dir"))
    scope = target.storage_dir / ns / "cold" / name
    seen = observe.cold_scope(scope)
    assert seen.other_files == () and seen.manifest is not None
    assert seen.manifest.table_id == f"{ns}.cold" and seen.manifest.user_id == name
    assert all(p.rows for p in seen.parquet)
    rows = scope_rows(scope)
    assert sorted((r["id"], r["body"], r["_deleted"]) for r in rows) == [
        (1, "a", False),
        (2, "b", False),
    ]
    assert admin.query_all(f"SELECT id, body FROM {ns}.cold", "id", as_user=name).rows == (
        (1, "a"),
        (2, "b"),
    )


def test_start_flush_and_wait_job(admin: SqlClient, ns: str) -> None:
    admin.create_table(f"{ns}.sf", "id INT PRIMARY KEY", table_type="SHARED")
    assert admin.start_flush(f"{ns}.sf") is None
    admin.sql(f"INSERT INTO {ns}.sf (id) VALUES (1)")
    job_id = admin.start_flush(f"{ns}.sf")
    assert job_id is not None
    assert admin.wait_job(job_id, timeout=30).status == "completed"


def test_jobs_are_looked_up_together(admin: SqlClient, ns: str) -> None:
    ids = []
    for name in ("j1", "j2"):
        admin.create_table(f"{ns}.{name}", "id INT PRIMARY KEY", table_type="SHARED")
        admin.sql(f"INSERT INTO {ns}.{name} (id) VALUES (1)")
        job_id = admin.start_flush(f"{ns}.{name}")
        assert job_id is not None
        ids.append(job_id)
    ended = admin.wait_jobs(ids, timeout=30)
    assert sorted(ended) == sorted(ids)
    assert all(job.status == "completed" for job in ended.values())
    assert admin.jobs_by_id([*ids, "FL-nosuchjob"]).keys() == set(ids)
    assert admin.jobs_by_id([]) == {}


def test_system_table_readers(
    target: Target, admin: SqlClient, alice: tuple[str, SqlClient]
) -> None:
    users = {u.user_id: u for u in admin.users()}
    assert users["root"].role == "system" and users[alice[0]].role == "user"
    storages = {s.storage_id: s for s in admin.storages()}
    assert "local" in storages and storages["local"].storage_type == "filesystem"
    if not target.skip_reason("data_dir"):
        assert storages["local"].base_directory is not None
        assert storages["local"].base_directory.rstrip("/").endswith("storage")
    assert isinstance(admin.live_queries(), list)


def test_login_as_and_drop_user_scope(admin: SqlClient, ns: str) -> None:
    admin.create_user(f"{ns}_svc", "svc-password-1", role="service")
    with admin.login_as(f"{ns}_svc", "svc-password-1") as svc:
        assert svc.role == "service"
        assert svc.me()["user"]["id"] == f"{ns}_svc"
    admin.create_table(f"{ns}.gone", "id INT PRIMARY KEY", table_type="SHARED")
    admin.drop_table(f"{ns}.gone")
    assert admin.tables(ns) == []
