"""The hostile requests as they go on the wire: each mutation breaks the statement the way its
name says, each body kind is what the SQL endpoint must refuse, each forged credential is what
its name says; and what the plain sim answers to every one of them."""

from __future__ import annotations

import json

import jwt
import pytest

from kalamfuzz.adapters import hostile as wire
from kalamfuzz.adapters.target import Target
from kalamfuzz.model.hostile import MUST_REFUSE, MUTATED, NON_FINITE

SQL = "DELETE FROM ns.t WHERE id = 1"


@pytest.mark.parametrize("n", [0, 5, 29, 1000])
def test_truncate_cuts_short_and_never_returns_the_whole_statement(n: int) -> None:
    cut = wire.mutate(SQL, "truncate", n)
    assert cut and SQL.startswith(cut) and cut != SQL


def test_mutations_break_what_they_name() -> None:
    assert wire.mutate(SQL, "quote", 3).count("'") == 1
    assert "\x00" in wire.mutate(SQL, "nul", 7)
    assert wire.mutate(SQL, "nesting", 2).count("(") == 20_000
    assert wire.mutate(SQL, "in_list", 1).count(",") == 99_999
    assert wire.mutate(SQL, "stacked_garbage", 0).startswith(SQL + "; ")
    assert "/*" in wire.mutate(SQL, "unclosed_comment", 0)
    assert set(wire.MUTATIONS) == set(MUTATED) >= MUST_REFUSE
    with pytest.raises(ValueError, match="unknown mutation"):
        wire.mutate(SQL, "nope", 0)


def test_bodies_are_what_the_endpoint_does_not_take() -> None:
    for kind in wire.BODIES:
        content, content_type = wire.body(kind, SQL)
        assert content_type == "application/json"
        try:
            parsed = json.loads(content)
        except ValueError:
            assert kind in ("not_json", "not_utf8", "empty")
            continue
        if kind == "lone_surrogate":
            with pytest.raises(UnicodeEncodeError):
                parsed["sql"].encode()
        elif kind == "too_long":
            assert len(parsed["sql"]) > wire.TOO_LONG
        else:
            # never the one shape it takes: an object whose sql is a string and nothing else
            # of the wrong type
            well_formed = (
                isinstance(parsed, dict)
                and isinstance(parsed.get("sql"), str)
                and isinstance(parsed.get("params", []), list)
                and isinstance(parsed.get("namespace_id", ""), str)
            )
            assert not well_formed, kind


def test_forged_credentials_are_what_they_say() -> None:
    args = {"user_id": "u1", "role": "user", "password": "pw-123456", "refresh_token": "r.t.x"}
    secret = "s" * 40
    assert wire.authorization("missing", secret=None, **args) is None
    assert wire.authorization("refresh", secret=None, **args) == "Bearer r.t.x"
    assert wire.authorization("basic", secret=None, **args).startswith("Basic ")  # type: ignore[union-attr]

    def claims(kind: str) -> dict[str, object]:
        header = wire.authorization(kind, secret=secret, **args)
        assert header is not None
        return dict(jwt.decode(header[7:], options={"verify_signature": False}))

    assert claims("other_issuer")["iss"] != "kalamdb"
    assert claims("role_claim")["role"] == "system"
    assert "token_type" not in claims("no_token_type")
    assert claims("unknown_user")["sub"] != "u1"
    assert int(claims("expired")["exp"]) < int(claims("other_issuer")["exp"])  # type: ignore[call-overload]
    assert (
        jwt.get_unverified_header(wire.authorization("alg_none", secret=None, **args)[7:])["alg"]
        == "none"
    )  # type: ignore[index]
    with pytest.raises(ValueError, match="secret"):
        wire.authorization("expired", secret=None, **args)


def test_the_plain_sim_refuses_every_hostile_request_with_a_4xx() -> None:
    with Target.parse("sim") as t, t.client() as root:
        root.sql("CREATE NAMESPACE hz")
        root.sql("CREATE USER TABLE hz.t (id BIGINT PRIMARY KEY, s TEXT)")
        sql = "INSERT INTO hz.t (id, s) VALUES (1, 'a')"
        bearer = f"Bearer {root.token}"
        for kind in wire.BODIES:
            content, content_type = wire.body(kind, sql)
            obs = wire.send(t.url, content, authorization=bearer, content_type=content_type)
            assert obs.status in (400, 413), (kind, obs)
        for kind in wire.TOKENS:
            header = wire.authorization(
                kind,
                user_id="root",
                role="system",
                password=root.password,
                refresh_token=root.refresh_token,
                secret=t.jwt_secret,
            )
            obs = wire.send(t.url, json.dumps({"sql": sql}).encode(), authorization=header)
            assert obs.status == 401, (kind, obs)
        for mutation in MUST_REFUSE:
            content = json.dumps({"sql": wire.mutate(sql, mutation, 0)}).encode()
            obs = wire.send(t.url, content, authorization=bearer)
            assert obs.status == 400, (mutation, obs)
        assert root.sql("SELECT * FROM hz.t").rows == ()  # nothing of it ran
        assert wire.healthy(t.url) is None


def test_the_plain_sim_reads_back_every_double_it_stores() -> None:
    with Target.parse("sim") as t, t.client() as root:
        root.sql("CREATE NAMESPACE hz")
        root.sql("CREATE SHARED TABLE hz.d (id INT PRIMARY KEY, d DOUBLE)")
        for i, literal in enumerate(NON_FINITE.values()):
            root.sql(f"INSERT INTO hz.d (id, d) VALUES ({i}, {literal})")
        assert len(root.sql("SELECT id, d FROM hz.d").rows) == len(NON_FINITE)
