"""SqlClient against httpx.MockTransport: login/setup/refresh, result folding, error mapping,
retry rules. The same behaviours are exercised against the launched sim in test_sql_server.py."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from kalamfuzz.adapters.sql import SqlClient
from kalamfuzz.errors import (
    AuthError,
    ConfigError,
    KalamError,
    OutcomeUnknown,
    PermissionDenied,
    ProtocolError,
    RateLimited,
    ServerError,
    SetupRequired,
    SqlError,
    TargetUnreachable,
)

URL = "http://127.0.0.1:9"
LOGIN_OK = {
    "user": {"id": "root", "role": "system"},
    "access_token": "acc-1",
    "refresh_token": "ref-1",
    "expires_at": "2030-01-01T00:00:00Z",
}


def ok(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"status": "success", "results": results, "took": 1.5}


def sql_error(code: str, message: str, details: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if details:
        err["details"] = details
    return {"status": "error", "results": [], "took": 0.1, "error": err}


class Fake:
    """A scripted server: route → handler; records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.sql_handler: Callable[[dict[str, Any], httpx.Request], httpx.Response] = (
            lambda body, req: httpx.Response(200, json=ok([]))
        )
        self.login_handler: Callable[[dict[str, Any]], httpx.Response] = lambda body: (
            httpx.Response(200, json=LOGIN_OK)
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content) if request.content else {}
        if request.url.path == "/v1/api/auth/login":
            return self.login_handler(body)
        if request.url.path == "/v1/api/auth/setup":
            return httpx.Response(200, json={"message": "Server setup complete."})
        if request.url.path == "/v1/api/auth/refresh":
            assert request.headers["authorization"] == "Bearer ref-1"
            return httpx.Response(200, json={**LOGIN_OK, "access_token": "acc-2"})
        if request.url.path == "/v1/api/sql":
            return self.sql_handler(body, request)
        return httpx.Response(404, text="not found")

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


@pytest.fixture
def fake() -> Fake:
    return Fake()


def client(fake: Fake, **kw: Any) -> SqlClient:
    return SqlClient(URL, "root", "secret-pw-1", transport=httpx.MockTransport(fake), **kw)


def test_sql_sends_bearer_json_and_namespace_id(fake: Fake) -> None:
    seen: list[tuple[dict[str, Any], str]] = []

    def handler(body: dict[str, Any], req: httpx.Request) -> httpx.Response:
        seen.append((body, req.headers["authorization"]))
        return httpx.Response(
            200,
            json=ok(
                [
                    {
                        "schema": [
                            {"name": "id", "data_type": "BigInt", "index": 0, "flags": ["pk"]},
                            {"name": "at", "data_type": "Timestamp", "index": 1},
                        ],
                        "rows": [["1", 0], ["2", None]],
                        "row_count": 2,
                        "as_user": "root",
                    }
                ]
            ),
        )

    fake.sql_handler = handler
    c = client(fake, namespace="app")
    res = c.sql("SELECT id, at FROM t WHERE id > $1", params=[0])
    assert seen == [
        (
            {"sql": "SELECT id, at FROM t WHERE id > $1", "params": [0], "namespace_id": "app"},
            "Bearer acc-1",
        )
    ]
    assert res.result.column_names == ("id", "at")
    assert res.rows[0][0] == 1 and res.rows[1][1] is None
    assert res.dicts()[1] == {"id": 2, "at": None}
    assert res.result.as_user == "root" and res.took_ms == 1.5
    assert res.sent_at <= res.received_at
    assert fake.requests[0].url.path == "/v1/api/auth/login"
    assert json.loads(fake.requests[0].content) == {"user": "root", "password": "secret-pw-1"}


def test_multi_statement_folding_is_exposed(fake: Fake) -> None:
    fake.sql_handler = lambda body, req: httpx.Response(
        200,
        json=ok(
            [
                {"row_count": 0, "message": "Table created", "as_user": "root"},
                {
                    "schema": [{"name": "n", "data_type": "BigInt", "index": 0}],
                    "rows": [["2"]],
                    "row_count": 1,
                },
                {"row_count": 2, "message": "Inserted 2 row(s)", "as_user": "root"},
                {"row_count": 1, "message": "Deleted 1 row(s)", "as_user": "root"},
            ]
        ),
    )
    res = client(fake).sql(
        "CREATE ...; INSERT ...; INSERT ...; SELECT COUNT(*) AS n FROM t; DELETE ..."
    )
    assert (res.inserted, res.updated, res.deleted) == (2, 0, 1)
    assert res.results[1].scalar() == 2
    with pytest.raises(ProtocolError):
        _ = res.result


def test_setup_required_runs_setup_then_logs_in(fake: Fake) -> None:
    calls = {"n": 0}

    def login(body: dict[str, Any]) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(
                428, json={"error": "setup_required", "message": "Server requires initial setup."}
            )
        return httpx.Response(200, json=LOGIN_OK)

    fake.login_handler = login
    client(fake)
    assert fake.paths() == ["/v1/api/auth/login", "/v1/api/auth/setup", "/v1/api/auth/login"]
    assert json.loads(fake.requests[1].content) == {
        "user": "kalamfuzz_admin",
        "password": "secret-pw-1",
        "root_password": "secret-pw-1",
        "email": None,
    }


def test_setup_required_without_auto_setup_raises(fake: Fake) -> None:
    fake.login_handler = lambda body: httpx.Response(
        428, json={"error": "setup_required", "message": "x"}
    )
    with pytest.raises(SetupRequired) as info:
        client(fake, auto_setup=False)
    assert info.value.status == 428 and info.value.code == "setup_required"


def test_wrong_credentials_one_line_naming_the_fix(fake: Fake) -> None:
    fake.login_handler = lambda body: httpx.Response(
        401, json={"error": "unauthorized", "message": "Invalid credentials"}
    )
    with pytest.raises(AuthError) as info:
        client(fake)
    assert "/v1/api/auth/setup" not in fake.paths()
    text = str(info.value)
    assert "\n" not in text and "KALAMFUZZ_PASSWORD" in text and "secret-pw-1" not in text
    assert info.value.status == 401 and info.value.code == "unauthorized"


def test_token_expired_refreshes_and_retries_once(fake: Fake) -> None:
    tokens: list[str] = []

    def handler(body: dict[str, Any], req: httpx.Request) -> httpx.Response:
        tokens.append(req.headers["authorization"])
        if len(tokens) == 1:
            return httpx.Response(401, json=sql_error("TOKEN_EXPIRED", "Invalid credentials"))
        return httpx.Response(200, json=ok([{"row_count": 1, "message": "Inserted 1 row(s)"}]))

    fake.sql_handler = handler
    res = client(fake).sql("INSERT INTO ns.t VALUES (1)")
    assert tokens == ["Bearer acc-1", "Bearer acc-2"]
    assert res.inserted == 1


@pytest.mark.parametrize(
    ("status", "body", "exc", "code"),
    [
        (400, sql_error("INVALID_SQL", "Syntax error near 'SELCT'"), SqlError, "INVALID_SQL"),
        (
            400,
            sql_error("SQL_EXECUTION_ERROR", "Statement 1 failed: Already exists"),
            SqlError,
            "SQL_EXECUTION_ERROR",
        ),
        (
            403,
            sql_error("PERMISSION_DENIED", "Admin privileges required"),
            PermissionDenied,
            "PERMISSION_DENIED",
        ),
        (
            401,
            sql_error("INVALID_CREDENTIALS", "Invalid credentials"),
            AuthError,
            "INVALID_CREDENTIALS",
        ),
        (503, sql_error("NOT_LEADER", "not leader"), ServerError, "NOT_LEADER"),
        (500, sql_error("INTERNAL_ERROR", "boom"), ServerError, "INTERNAL_ERROR"),
    ],
)
def test_error_mapping(
    fake: Fake, status: int, body: dict[str, Any], exc: type[KalamError], code: str
) -> None:
    fake.sql_handler = lambda b, r: httpx.Response(status, json=body)
    with pytest.raises(exc) as info:
        client(fake).sql("SELCT 1")
    err = info.value
    assert (err.status, err.code, err.statement) == (status, code, "SELCT 1")
    assert err.message == body["error"]["message"]
    assert pickle.loads(pickle.dumps(err)).code == code


def test_error_statement_and_details_redact_passwords(fake: Fake) -> None:
    fake.sql_handler = lambda b, r: httpx.Response(
        400, json=sql_error("SQL_EXECUTION_ERROR", "exists", details=b["sql"])
    )
    with pytest.raises(SqlError) as info:
        client(fake).create_user("bob", "hunter2-pw")
    assert "hunter2" not in str(info.value) and "hunter2" not in (info.value.details or "")
    assert "hunter2" not in repr(info.value)


def test_rate_limited_is_retried_then_raised(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kalamfuzz.adapters.sql._RETRY_BACKOFF", (0.0, 0.0))
    n = {"calls": 0}

    def handler(b: dict[str, Any], r: httpx.Request) -> httpx.Response:
        n["calls"] += 1
        return httpx.Response(
            429,
            json={"error": "RATE_LIMIT_EXCEEDED", "message": "Too many", "retry_after_seconds": 1},
        )

    fake.sql_handler = handler
    with pytest.raises(RateLimited) as info:
        client(fake).sql("INSERT INTO ns.t VALUES (1)")
    assert n["calls"] == 3 and info.value.code == "RATE_LIMIT_EXCEEDED"


def test_non_json_answer_is_protocol_error_naming_the_cause(fake: Fake) -> None:
    fake.sql_handler = lambda b, r: httpx.Response(
        200, text="<html>nginx</html>", headers={"content-type": "text/html"}
    )
    with pytest.raises(ProtocolError) as info:
        client(fake).sql("SELECT 1")
    assert "non-JSON" in str(info.value) and "KalamDB server" in str(info.value)


def test_non_json_login_answer(fake: Fake) -> None:
    fake.login_handler = lambda body: httpx.Response(200, text="hello")
    with pytest.raises(ProtocolError, match="non-JSON"):
        client(fake)


def test_missing_results_is_protocol_error(fake: Fake) -> None:
    fake.sql_handler = lambda b, r: httpx.Response(200, json={"status": "success"})
    with pytest.raises(ProtocolError, match="results"):
        client(fake).sql("SELECT 1")


def test_read_timeout_retries_select_but_not_insert(fake: Fake) -> None:
    calls: list[str] = []

    def handler(b: dict[str, Any], r: httpx.Request) -> httpx.Response:
        calls.append(b["sql"])
        if len(calls) in (1, 3):
            raise httpx.ReadTimeout("timed out", request=r)
        return httpx.Response(200, json=ok([{"row_count": 0}]))

    fake.sql_handler = handler
    c = client(fake)
    c.sql("SELECT 1")  # timed out once, retried
    assert calls == ["SELECT 1", "SELECT 1"]
    with pytest.raises(OutcomeUnknown) as info:
        c.sql("INSERT INTO ns.t VALUES (1)")
    assert (
        calls[-1] == "INSERT INTO ns.t VALUES (1)"
        and calls.count("INSERT INTO ns.t VALUES (1)") == 1
    )
    assert "may or may not" in str(info.value)


def test_unreachable_target_one_line() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with pytest.raises(TargetUnreachable) as info:
        SqlClient(URL, "root", "pw-123456", transport=httpx.MockTransport(refuse))
    assert "cannot connect to http://127.0.0.1:9" in str(info.value)
    assert "KALAMFUZZ_TARGET" in str(info.value)


def test_params_must_be_scalars(fake: Fake) -> None:
    with pytest.raises(ConfigError, match=r"\$2"):
        client(fake).sql("SELECT $1, $2", params=[1, [2]])


def test_bad_url_is_config_error() -> None:
    with pytest.raises(ConfigError, match="http"):
        SqlClient("localhost:8080", "root", "x", login=False)


def test_execute_as_quotes_user_and_strips_semicolon(fake: Fake) -> None:
    sent: list[str] = []
    fake.sql_handler = lambda b, r: (
        sent.append(b["sql"]),
        httpx.Response(200, json=ok([{"row_count": 1}])),
    )[1]
    client(fake).execute_as("o'brien", "INSERT INTO ns.t VALUES (1);")
    assert sent == ["EXECUTE AS USER 'o''brien' (INSERT INTO ns.t VALUES (1))"]


def test_query_all_pages_with_order_by_limit_offset(fake: Fake) -> None:
    data = [[str(i)] for i in range(5)]
    sent: list[str] = []

    def handler(b: dict[str, Any], r: httpx.Request) -> httpx.Response:
        sent.append(b["sql"])
        limit = int(b["sql"].split("LIMIT ")[1].split()[0])
        offset = int(b["sql"].split("OFFSET ")[1].rstrip(")"))
        rows = data[offset : offset + limit]
        return httpx.Response(
            200,
            json=ok(
                [
                    {
                        "schema": [{"name": "id", "data_type": "BigInt", "index": 0}],
                        "rows": rows,
                        "row_count": len(rows),
                    }
                ]
            ),
        )

    fake.sql_handler = handler
    res = client(fake).query_all("SELECT id FROM ns.t", "id", page_size=2, as_user="u1")
    assert res.column("id") == [0, 1, 2, 3, 4]
    assert sent[0] == "EXECUTE AS USER 'u1' (SELECT id FROM ns.t ORDER BY id LIMIT 2 OFFSET 0)"
    assert len(sent) == 3
    with pytest.raises(ConfigError, match="ORDER BY"):
        client(fake).query_all("SELECT id FROM ns.t LIMIT 5", "id")


def test_flush_parses_job_id_and_waits_for_final_status(fake: Fake) -> None:
    polls = {"n": 0}

    def handler(b: dict[str, Any], r: httpx.Request) -> httpx.Response:
        sql = b["sql"]
        if sql.startswith("STORAGE FLUSH"):
            return httpx.Response(
                200,
                json=ok(
                    [
                        {
                            "row_count": 0,
                            "message": "Storage flush started for table 'ns.t'. Job ID: FL-0123456789ab",
                        }
                    ]
                ),
            )
        assert "job_id IN ('FL-0123456789ab')" in sql
        polls["n"] += 1
        status = "running" if polls["n"] < 3 else "completed"
        return httpx.Response(
            200,
            json=ok(
                [
                    {
                        "schema": [
                            {"name": "job_id", "data_type": "Text", "index": 0},
                            {"name": "job_type", "data_type": "Text", "index": 1},
                            {"name": "status", "data_type": "Text", "index": 2},
                            {"name": "parameters", "data_type": "Json", "index": 3},
                        ],
                        "rows": [
                            [
                                "FL-0123456789ab",
                                "flush",
                                status,
                                '{"table_id":"ns.t","table_type":"Shared"}',
                            ]
                        ],
                        "row_count": 1,
                    }
                ]
            ),
        )

    fake.sql_handler = handler
    job = client(fake).flush("ns.t", poll=0.001)
    assert job is not None and job.status == "completed" and job.ok and job.table_id == "ns.t"
    assert polls["n"] == 3


def test_flush_nothing_to_do_returns_none(fake: Fake) -> None:
    fake.sql_handler = lambda b, r: httpx.Response(
        200,
        json=ok(
            [
                {
                    "row_count": 0,
                    "message": "Storage flush skipped: no pending writes for table 'ns.t'",
                }
            ]
        ),
    )
    assert client(fake).flush("ns.t") is None
    with pytest.raises(ConfigError, match=r"namespace\.table"):
        client(fake).flush("t")


def test_401_on_fresh_server_runs_setup_when_status_says_so() -> None:
    state = {"setup": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/api/auth/login":
            if state["setup"]:
                return httpx.Response(200, json=LOGIN_OK)
            return httpx.Response(
                401, json={"error": "unauthorized", "message": "Invalid credentials"}
            )
        if request.url.path == "/v1/api/auth/status":
            return httpx.Response(200, json={"needs_setup": not state["setup"], "message": "..."})
        if request.url.path == "/v1/api/auth/setup":
            state["setup"] = True
            return httpx.Response(200, json={"message": "Server setup complete."})
        return httpx.Response(404)

    c = SqlClient(URL, "root", "secret-pw-1", transport=httpx.MockTransport(handler))
    assert c.role == "system" and state["setup"]
