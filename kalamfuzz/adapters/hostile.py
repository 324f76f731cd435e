"""Requests a well-behaved client never sends, and what the server answered them.

Three families, each named by a kind the machines draw (the wire details stay here):

* ``MUTATIONS``: a statement's text broken on purpose (cut short, an unbalanced quote, nesting
  past any parser's depth, a huge IN list, a NUL, a second statement that cannot run);
* ``BODIES``: a ``POST /v1/api/sql`` body that is not what the endpoint takes (not JSON, the
  wrong types, a lone surrogate, bytes that are not UTF-8, over the size limit);
* ``TOKENS``: an ``Authorization`` header that must not authenticate (none, garbage, Basic,
  a JWT signed with another secret, ``alg: none``, another issuer, expired, a refresh token, a
  role the account does not have, no token type, a user that does not exist).

Each request goes out on a connection of its own, so that one the server drops or leaves
hanging is observed as such and spoils nothing else.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt

from kalamfuzz.adapters.sql import HEALTH_PATH, SQL_PATH, tls_context
from kalamfuzz.observations import HostileObservation

__all__ = [
    "BODIES",
    "MUTATIONS",
    "NEEDS_SECRET",
    "TOKENS",
    "authorization",
    "body",
    "healthy",
    "mutate",
    "send",
]

#: A body of exactly one mebibyte and more: KalamDB's SQL length limit is 1 MiB
#: (MAX_SQL_QUERY_LENGTH) and its body limit is of the same order.
TOO_LONG = 1024 * 1024 + 1

MUTATIONS = (
    "truncate",
    "quote",
    "nesting",
    "chain",
    "in_list",
    "nul",
    "stacked_garbage",
    "unclosed_comment",
)

BODIES = (
    "not_json",
    "json_array",
    "sql_number",
    "sql_null",
    "sql_list",
    "sql_object",
    "no_sql",
    "params_object",
    "namespace_number",
    "lone_surrogate",
    "not_utf8",
    "empty",
    "too_long",
)

TOKENS = (
    "missing",
    "garbage",
    "basic",
    "other_secret",
    "alg_none",
    "other_issuer",
    "expired",
    "refresh",
    "role_claim",
    "no_token_type",
    "unknown_user",
)
#: Forgeries that need the server's own JWT secret: only a target this project started knows it.
NEEDS_SECRET = frozenset({"other_issuer", "expired", "role_claim", "no_token_type", "unknown_user"})


def mutate(sql: str, mutation: str, n: int) -> str:
    """``sql`` broken by ``mutation``; ``n`` (any non-negative int) picks where or how much."""
    if mutation == "truncate":
        return sql[: 1 + n % max(1, len(sql) - 1)]
    if mutation == "quote":
        at = n % (len(sql) + 1)
        return sql[:at] + "'" + sql[at:]
    if mutation == "nesting":
        depth = (100, 1_000, 20_000)[n % 3]
        return (
            f"{sql} AND {'(' * depth}1 = 1{')' * depth}"
            if " WHERE " in sql
            else (f"SELECT {'(' * depth}1{')' * depth}")
        )
    if mutation == "chain":
        # no parentheses, so no parser's nesting limit applies; the tree is as deep anyway
        terms = (100, 3_000, 20_000)[n % 3]
        chain = " + ".join(["1"] * terms)
        return f"{sql} AND id < {chain}" if " WHERE " in sql else f"SELECT {chain}"
    if mutation == "in_list":
        size = (1_000, 100_000)[n % 2]
        values = ", ".join(str(i) for i in range(size))
        return (
            f"{sql} AND id IN ({values})" if " WHERE " in sql else f"{sql} WHERE id IN ({values})"
        )
    if mutation == "nul":
        at = n % (len(sql) + 1)
        return sql[:at] + "\x00" + sql[at:]
    if mutation == "stacked_garbage":
        return f"{sql}; SELEC * FORM nowhere"
    if mutation == "unclosed_comment":
        return f"{sql}; /* never closed"
    raise ValueError(f"unknown mutation {mutation!r}")


def body(kind: str, sql: str) -> tuple[bytes, str]:
    """A request body of ``kind`` carrying ``sql`` where it can, and its Content-Type (``ok``:
    the well-formed one, for requests whose hostility lies elsewhere)."""
    json_type = "application/json"
    shapes: dict[str, Any] = {
        "json_array": [sql],
        "sql_number": {"sql": 1},
        "sql_null": {"sql": None},
        "sql_list": {"sql": [sql]},
        "sql_object": {"sql": {"text": sql}},
        "no_sql": {"query": sql},
        "params_object": {"sql": sql, "params": {"a": 1}},
        "namespace_number": {"sql": sql, "namespace_id": 7},
    }
    if kind == "ok":  # the one body the endpoint takes: a broken statement goes in one
        return json.dumps({"sql": sql}).encode(), json_type
    if kind in shapes:
        return json.dumps(shapes[kind]).encode(), json_type
    if kind == "not_json":
        return sql.encode(), json_type
    if kind == "lone_surrogate":
        # valid JSON syntax, but \\ud800 alone is no Unicode character
        return b'{"sql": "' + json.dumps(sql)[1:-1].encode() + b' \\ud800"}', json_type
    if kind == "not_utf8":
        return b'{"sql": "' + json.dumps(sql)[1:-1].encode() + b' \xff\xfe"}', json_type
    if kind == "empty":
        return b"", json_type
    if kind == "too_long":
        padding = "-- " + "x" * TOO_LONG + "\n"
        return json.dumps({"sql": padding + sql}).encode(), json_type
    raise ValueError(f"unknown body kind {kind!r}")


def authorization(
    kind: str,
    *,
    user_id: str,
    role: str,
    password: str,
    refresh_token: str | None,
    secret: str | None,
) -> str | None:
    """The ``Authorization`` header of ``kind`` for ``user_id`` (None: no header at all)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "role": role,
        "iss": "kalamdb",
        "iat": now,
        "exp": now + 3600,
        "token_type": "access",
    }
    if kind == "missing":
        return None
    if kind == "garbage":
        return "Bearer not.a.jwt"
    if kind == "basic":
        return "Basic " + base64.b64encode(f"{user_id}:{password}".encode()).decode()
    if kind == "other_secret":
        return "Bearer " + jwt.encode(claims, "not-the-server-secret-" + "x" * 32, "HS256")
    if kind == "alg_none":
        return "Bearer " + jwt.encode(claims, None, algorithm="none")
    if kind == "refresh":
        if refresh_token is None:
            raise ValueError("no refresh token to misuse")
        return f"Bearer {refresh_token}"
    if secret is None:
        raise ValueError(f"forging {kind!r} needs the server's JWT secret")
    if kind == "other_issuer":
        claims["iss"] = "evil-issuer"
    elif kind == "expired":
        claims["iat"], claims["exp"] = now - 7200, now - 3600
    elif kind == "role_claim":
        claims["role"] = "system" if role != "system" else "user"
    elif kind == "no_token_type":
        del claims["token_type"]
    elif kind == "unknown_user":
        claims["sub"] = f"{user_id}_nobody"
    else:
        raise ValueError(f"unknown token kind {kind!r}")
    return "Bearer " + jwt.encode(claims, secret, "HS256")


def send(
    url: str,
    content: bytes,
    *,
    authorization: str | None,
    content_type: str = "application/json",
    timeout: float = 30.0,
) -> HostileObservation:
    """POST ``content`` to the SQL endpoint on a connection of its own."""
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    started = time.perf_counter()
    try:
        with httpx.Client(
            base_url=url, timeout=timeout, trust_env=False, verify=tls_context()
        ) as http:
            resp = http.post(SQL_PATH, content=content, headers=headers)
    except httpx.TimeoutException:
        return HostileObservation(status=0, lost=True, message=f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return HostileObservation(status=0, lost=True, message=f"{type(exc).__name__}: {exc}")
    text = resp.text
    code = message = None
    try:
        payload = resp.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            code, message = err.get("code"), err.get("message")
        elif isinstance(err, str):
            code, message = err, payload.get("message")
    return HostileObservation(
        status=resp.status_code,
        code=code if isinstance(code, str) else None,
        message=message if isinstance(message, str) else None,
        text=text,
        seconds=time.perf_counter() - started,
    )


def healthy(url: str, timeout: float = 5.0) -> str | None:
    """None when the server answers its health endpoint within ``timeout``; else why not."""
    try:
        with httpx.Client(
            base_url=url, timeout=timeout, trust_env=False, verify=tls_context()
        ) as http:
            resp = http.get(HEALTH_PATH)
    except httpx.HTTPError as exc:
        return f"the health endpoint did not answer: {type(exc).__name__}"
    if resp.status_code != 200:
        return f"the health endpoint answered HTTP {resp.status_code}"
    return None
