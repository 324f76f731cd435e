"""HTTP SQL client for KalamDB (``POST /v1/api/sql``, ``/v1/api/auth/*``), see HTTP_SQL.md.

:class:`SqlClient` logs in (running first-run setup when the server answers 428), sends statements
with a Bearer token, converts results to typed Python values and maps every failure to a
:class:`~kalamfuzz.errors.KalamError` subclass. It is synchronous and thread-safe: a concurrency
rule may share one client between threads.

Retries happen only where they cannot duplicate a write:

* a connection that could not be *established* is retried (the request never left);
* 429 ``RATE_LIMIT_EXCEEDED`` and 401 ``TOKEN_EXPIRED`` are retried (rejected before execution);
* a read timeout or a dropped response is retried for read-only statements
  (``SELECT/SHOW/DESCRIBE/EXPLAIN``) and raises :class:`~kalamfuzz.errors.OutcomeUnknown` for any
  other statement: the write may or may not have happened, and the caller's model must keep both.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx
from attrs import field, frozen

from kalamfuzz.adapters.system import (
    Job,
    LiveQueryRow,
    StorageRow,
    TableRow,
    UserRow,
)
from kalamfuzz.adapters.values import Column, convert_positional, parse_schema, redact_sql
from kalamfuzz.errors import (
    AuthError,
    ConfigError,
    JobTimeout,
    KalamError,
    OutcomeUnknown,
    PermissionDenied,
    ProtocolError,
    RateLimited,
    ServerError,
    SetupRequired,
    SqlError,
    TargetUnreachable,
    TokenExpired,
)

__all__ = ["QueryResult", "SqlClient", "SqlResponse", "quote_ident", "quote_literal"]

log = logging.getLogger("kalamfuzz.adapters.sql")

SQL_PATH = "/v1/api/sql"
LOGIN_PATH = "/v1/api/auth/login"
REFRESH_PATH = "/v1/api/auth/refresh"
SETUP_PATH = "/v1/api/auth/setup"
STATUS_PATH = "/v1/api/auth/status"
ME_PATH = "/v1/api/auth/me"
HEALTH_PATH = "/health"

DEFAULT_MAX_QUERY_LIMIT = 1000  # [limits] max_query_limit
_READ_ONLY = re.compile(r"^\s*(SELECT|SHOW|DESCRIBE|EXPLAIN)\b", re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_JOB_ID = re.compile(r"Job ID:\s*([A-Z]{2}-[0-9A-Za-z]+)")
_FOLDED = re.compile(r"^(Inserted|Updated|Deleted) (\d+) row\(s\)")
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_RETRY_BACKOFF = (0.05, 0.2, 0.5, 1.0)


def quote_literal(value: str) -> str:
    """SQL string literal with single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    """Validate a KalamDB identifier (``[A-Za-z][A-Za-z0-9_]*``, ≤64) and return it unchanged.

    Dotted names (``ns.table``) are validated part by part.
    """
    for part in name.split("."):
        if not _IDENT.match(part):
            raise ConfigError(
                f"{name!r} is not a valid KalamDB identifier",
                hint="use letters, digits and '_', starting with a letter, at most 64 characters",
            )
    return name


# ---------------------------------------------------------------------------------------------
# results


@frozen
class QueryResult:
    """One entry of ``results``: typed rows (columns from the schema) or a DML/DDL message.

    ``rows`` hold converted values (BIGINT → int, TIMESTAMP → aware UTC datetime, JSON → parsed,
    BYTES → bytes, UUID → uuid.UUID, DECIMAL → Decimal). ``row_count`` is rows returned (SELECT)
    or rows affected (DML).
    """

    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    row_count: int
    message: str | None = None
    as_user: str | None = None
    #: the cells exactly as decoded from JSON (BIGINT as strings, TIMESTAMP as µs integers)
    raw_rows: tuple[tuple[Any, ...], ...] = field(default=(), repr=False, eq=False)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def dicts(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        names = self.column_names
        return [dict(zip(names, r, strict=True)) for r in self.rows]

    def column(self, name: str) -> list[Any]:
        """All values of one column."""
        try:
            i = self.column_names.index(name)
        except ValueError:
            raise KeyError(f"no column {name!r} in {self.column_names}") from None
        return [r[i] for r in self.rows]

    def scalar(self) -> Any:
        """The single cell of a one-row, one-column result."""
        if len(self.rows) != 1 or len(self.columns) != 1:
            raise ProtocolError(
                f"expected one row and one column, got {len(self.rows)}x{len(self.columns)}"
            )
        return self.rows[0][0]


@frozen
class SqlResponse:
    """A successful ``POST /v1/api/sql`` answer.

    ``results`` is exactly what the server sent: in a multi-statement request INSERT/UPDATE/DELETE
    results are removed and appended as ``Inserted/Updated/Deleted N row(s)`` summaries
    (HTTP_SQL.md §1.4); :attr:`inserted`, :attr:`updated` and :attr:`deleted` read those.
    ``sent_at``/``received_at`` are client wall-clock times (``time.time()`` seconds) bracketing
    the request, for models that depend on server time (STREAM TTL).
    """

    statement: str = field(repr=lambda s: repr(redact_sql(s)))
    results: tuple[QueryResult, ...]
    took_ms: float | None
    sent_at: float
    received_at: float

    @property
    def result(self) -> QueryResult:
        """The only result (raises if the server sent a different number)."""
        if len(self.results) != 1:
            raise ProtocolError(
                f"expected one result, got {len(self.results)}",
                statement=redact_sql(self.statement),
            )
        return self.results[0]

    @property
    def rows(self) -> tuple[tuple[Any, ...], ...]:
        return self.result.rows

    def dicts(self) -> list[dict[str, Any]]:
        return self.result.dicts()

    def scalar(self) -> Any:
        return self.result.scalar()

    def _folded(self, word: str) -> int:
        total = 0
        for r in self.results:
            m = _FOLDED.match(r.message or "")
            if m and m.group(1) == word:
                total += r.row_count
        return total

    @property
    def inserted(self) -> int:
        return self._folded("Inserted")

    @property
    def updated(self) -> int:
        return self._folded("Updated")

    @property
    def deleted(self) -> int:
        return self._folded("Deleted")


# ---------------------------------------------------------------------------------------------
# error mapping


def _body_json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except (ValueError, UnicodeDecodeError):
        return None


def _describe_non_json(resp: httpx.Response) -> str:
    ctype = resp.headers.get("content-type", "no content-type")
    text = resp.text[:80].replace("\n", " ") if resp.content else "<empty body>"
    return f"server answered non-JSON (HTTP {resp.status_code}, {ctype}): {text!r}"


def error_from_response(
    resp: httpx.Response, *, statement: str | None = None, sql_endpoint: bool = False
) -> KalamError:
    """Map an error answer (any shape KalamDB uses) to the matching KalamError subclass."""
    body = _body_json(resp)
    status = resp.status_code
    code: str | None = None
    message: str | None = None
    details: str | None = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # SQL envelope
            code = _str_or_none(err.get("code"))
            message = _str_or_none(err.get("message"))
            details = _str_or_none(err.get("details"))
        elif isinstance(err, str):  # auth / middleware envelope
            code = err
            message = _str_or_none(body.get("message")) or err
        else:
            message = _str_or_none(body.get("message"))
    elif body is None and resp.content:
        return ProtocolError(
            _describe_non_json(resp),
            status=status,
            statement=statement,
            hint="is the URL a KalamDB server (and not a proxy or another service)?",
        )
    message = message or f"HTTP {status} {resp.reason_phrase}".strip()
    kw: dict[str, Any] = {"status": status, "code": code, "statement": statement}
    if details:
        kw["details"] = redact_sql(details)
    cls: type[KalamError]
    if code == "TOKEN_EXPIRED":
        cls = TokenExpired
    elif status == 428 or (code or "").lower() == "setup_required":
        cls = SetupRequired
        kw["hint"] = "run first-run setup (POST /v1/api/auth/setup) or set KALAMDB_ROOT_PASSWORD"
    elif status == 401:
        cls = AuthError
    elif status == 403 or code in ("PERMISSION_DENIED", "UNAUTHORIZED", "INSUFFICIENT_PERMISSIONS"):
        cls = PermissionDenied
    elif status == 429:
        cls = RateLimited
        kw["hint"] = "raise [rate_limit] max_queries_per_sec / max_requests_per_ip_per_sec"
    elif status >= 500:
        cls = ServerError
    elif sql_endpoint:
        cls = SqlError
    else:
        cls = KalamError
    return cls(message, **kw)


def _str_or_none(v: Any) -> str | None:
    return None if v is None else str(v)


def _is_read_only(statement: str) -> bool:
    text = _COMMENT.sub(" ", statement).strip().rstrip(";")
    return bool(_READ_ONLY.match(text)) and ";" not in text


def _parse_results(body: Any, statement: str) -> tuple[tuple[QueryResult, ...], float | None]:
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise ProtocolError(
            "SQL answer has no 'results' array", statement=redact_sql(statement), status=200
        )
    out: list[QueryResult] = []
    for raw in body["results"]:
        if not isinstance(raw, dict):
            raise ProtocolError(f"result entry is not an object: {raw!r}", statement=statement)
        columns = parse_schema(raw.get("schema"))
        raw_rows = raw.get("rows")
        rows: tuple[tuple[Any, ...], ...] = ()
        wire: tuple[tuple[Any, ...], ...] = ()
        if raw_rows is not None:
            if not isinstance(raw_rows, list):
                raise ProtocolError("result 'rows' is not an array", statement=statement)
            wire = tuple(tuple(r) if isinstance(r, list) else (r,) for r in raw_rows)
            rows = tuple(
                convert_positional(columns, r, statement=redact_sql(statement)) for r in raw_rows
            )
        row_count = raw.get("row_count")
        if not isinstance(row_count, int) or isinstance(row_count, bool):
            raise ProtocolError(
                f"result has no integer row_count: {row_count!r}", statement=statement
            )
        out.append(
            QueryResult(
                columns=columns,
                rows=rows,
                row_count=row_count,
                message=_str_or_none(raw.get("message")),
                as_user=_str_or_none(raw.get("as_user")),
                raw_rows=wire,
            )
        )
    took = body.get("took")
    return tuple(out), float(took) if isinstance(took, int | float) else None


# ---------------------------------------------------------------------------------------------
# the client


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every client: httpx builds one per client unless given one, loading
    the CA bundle each time (40 ms; 3% of a no-bug campaign, which opens a client per actor and
    per restart)."""
    return ssl.create_default_context(cafile=certifi.where())


class SqlClient:
    """A logged-in KalamDB SQL session.

    ``SqlClient(url, user, password)`` logs in at once (``login=False`` defers it). With
    ``auto_setup`` (default) a fresh server that answers 428 ``setup_required`` is set up with
    ``password`` as root's password and a dba user ``setup_user`` with the same password, then
    logged in. The password is kept in memory only for re-login and never shown.
    """

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        namespace: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        auto_setup: bool = True,
        setup_user: str = "kalamfuzz_admin",
        login: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"target URL {url!r} is not an http(s) URL",
                hint="use e.g. url:http://127.0.0.1:8080",
            )
        self.url = url.rstrip("/")
        self.user = user
        self._password = password
        self.namespace = namespace
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.auto_setup = auto_setup
        self.setup_user = setup_user
        self._transport = transport
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        self._http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
            trust_env=not loopback,
            headers={"Accept": "application/json"},
            verify=tls_context(),
        )
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._refresh_token: str | None = None
        self.role: str | None = None
        if login:
            self.login()

    def __repr__(self) -> str:
        return f"SqlClient(url={self.url!r}, user={self.user!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SqlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def login_as(self, user: str, password: str, *, namespace: str | None = None) -> SqlClient:
        """A new client for another user on the same server (no first-run setup)."""
        return SqlClient(
            self.url,
            user,
            password,
            namespace=namespace if namespace is not None else self.namespace,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            auto_setup=False,
            transport=self._transport,
        )

    def through(self, url: str) -> SqlClient:
        """The same user and session, sending to ``url`` (a proxy in front of the server)."""
        other = SqlClient(
            url,
            self.user,
            self._password,
            namespace=self.namespace,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            auto_setup=False,
            login=False,
        )
        other._access_token, other._refresh_token = self._access_token, self._refresh_token
        other.role = self.role
        return other

    # -- raw HTTP -------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        statement: str | None = None,
        idempotent: bool,
    ) -> httpx.Response:
        """Send one request; retry only when that cannot run a write twice."""
        attempt = 0
        while True:
            try:
                return self._http.request(method, path, json=json_body, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt < len(_RETRY_BACKOFF):
                    time.sleep(_RETRY_BACKOFF[attempt])
                    attempt += 1
                    continue
                raise TargetUnreachable(
                    f"cannot connect to {self.url}: {_exc_text(exc)}",
                    statement=statement,
                    hint="start the server, or fix --target / KALAMFUZZ_TARGET",
                ) from None
            except (
                httpx.ReadTimeout,
                httpx.WriteTimeout,
                httpx.PoolTimeout,
                httpx.RemoteProtocolError,
                httpx.ReadError,
                httpx.WriteError,
            ) as exc:
                if idempotent and attempt < 1:
                    attempt += 1
                    continue
                raise OutcomeUnknown(
                    f"no answer from {self.url}{path}: {_exc_text(exc)}",
                    statement=statement,
                    hint="the statement may or may not have run; read back to decide",
                ) from None
            except httpx.HTTPError as exc:
                raise KalamError(
                    f"HTTP request to {self.url}{path} failed: {_exc_text(exc)}",
                    statement=statement,
                ) from None

    # -- auth -----------------------------------------------------------------------------

    def login(self) -> None:
        """``POST /v1/api/auth/login``, with first-run setup when the server needs it.

        A fresh server whose root password is empty answers 428 ``setup_required`` to an empty
        password and 401 to any other (HTTP_SQL.md §1.7); on either, when ``auto_setup`` is on and
        ``GET /v1/api/auth/status`` says ``needs_setup``, the client runs setup and logs in again.
        """
        try:
            self._login_once()
        except AuthError as exc:
            if not self.auto_setup or not self._needs_setup(exc):
                raise
            if self.user != "root":
                raise ConfigError(
                    "the server needs first-run setup, which sets root's password",
                    hint="log in as root (KALAMFUZZ_USER=root) or set KALAMDB_ROOT_PASSWORD "
                    "when starting the server",
                ) from None
            if len(self._password) < 8:
                raise ConfigError(
                    "the server needs first-run setup and KalamDB refuses root passwords "
                    "shorter than 8 characters",
                    hint="use a longer KALAMFUZZ_PASSWORD",
                ) from None
            self.setup(root_password=self._password, dba_user=self.setup_user)
            self._login_once()

    def _needs_setup(self, exc: AuthError) -> bool:
        if isinstance(exc, SetupRequired):
            return True
        try:
            return bool(self.auth_status().get("needs_setup"))
        except KalamError:  # status is localhost-only; a remote server answers 403
            return False

    def _login_once(self) -> None:
        resp = self._request(
            "POST",
            LOGIN_PATH,
            json_body={"user": self.user, "password": self._password},
            idempotent=True,
        )
        if resp.status_code != 200:
            err = error_from_response(resp)
            if type(err) is AuthError:
                err.message = f"login as {self.user!r} failed: {err.message}"
                err.hint = "check the user name and password (KALAMFUZZ_USER / KALAMFUZZ_PASSWORD)"
            raise err
        self._store_tokens(resp)

    def _store_tokens(self, resp: httpx.Response) -> None:
        body = _body_json(resp)
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            if body is None:
                raise ProtocolError(
                    _describe_non_json(resp),
                    status=resp.status_code,
                    hint="is the URL a KalamDB server?",
                )
            raise ProtocolError("login answer has no access_token", status=resp.status_code)
        with self._lock:
            self._access_token = body["access_token"]
            refresh = body.get("refresh_token")
            self._refresh_token = refresh if isinstance(refresh, str) else None
            user = body.get("user")
            if isinstance(user, dict) and isinstance(user.get("role"), str):
                self.role = user["role"]

    def setup(
        self,
        *,
        root_password: str,
        dba_user: str = "kalamfuzz_admin",
        dba_password: str | None = None,
        email: str | None = None,
    ) -> None:
        """First-run setup (``POST /v1/api/auth/setup``, localhost only): sets root's password and
        creates a dba user. Does not log in."""
        resp = self._request(
            "POST",
            SETUP_PATH,
            json_body={
                "user": dba_user,
                "password": dba_password if dba_password is not None else root_password,
                "root_password": root_password,
                "email": email,
            },
            idempotent=True,
        )
        if resp.status_code != 200:
            err = error_from_response(resp)
            err.message = f"first-run setup failed: {err.message}"
            raise err

    def refresh(self) -> None:
        """Renew the access token with the refresh token, falling back to a fresh login."""
        if self._refresh_token:
            resp = self._request(
                "POST",
                REFRESH_PATH,
                headers={"Authorization": f"Bearer {self._refresh_token}"},
                idempotent=True,
            )
            if resp.status_code == 200:
                self._store_tokens(resp)
                return
        self._login_once()

    @property
    def token(self) -> str:
        """The current access token (for the WebSocket). Never log it."""
        if self._access_token is None:
            self.login()
        assert self._access_token is not None
        return self._access_token

    @property
    def refresh_token(self) -> str | None:
        """The current refresh token (hostile requests misuse it as an access token). Never log it."""
        return self._refresh_token

    @property
    def password(self) -> str:
        """The password this client logs in with. Never log it."""
        return self._password

    def auth_status(self) -> dict[str, Any]:
        """``GET /v1/api/auth/status`` (``needs_setup``, ``message``)."""
        return self._get_json(STATUS_PATH)

    def me(self) -> dict[str, Any]:
        """``GET /v1/api/auth/me`` for the logged-in user."""
        return self._get_json(ME_PATH, auth=True)

    def health(self) -> dict[str, Any]:
        """``GET /health`` (localhost only): ``{"status":"healthy","version":..}``."""
        return self._get_json(HEALTH_PATH)

    def _get_json(self, path: str, *, auth: bool = False) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if auth else None
        resp = self._request("GET", path, headers=headers, idempotent=True)
        if resp.status_code != 200:
            raise error_from_response(resp)
        body = _body_json(resp)
        if not isinstance(body, dict):
            raise ProtocolError(_describe_non_json(resp), status=resp.status_code)
        return body

    # -- SQL ------------------------------------------------------------------------------

    def sql(
        self,
        statement: str,
        params: Sequence[Any] | None = None,
        namespace: str | None = None,
    ) -> SqlResponse:
        """Run one request (one or more statements) and return the typed answer.

        ``params`` fill ``$1, $2, ...`` (JSON null/bool/number/string only). ``namespace`` (or the
        client's default) is sent as ``namespace_id`` and resolves unqualified table names.
        Raises a :class:`KalamError` subclass (``SqlError``, ``PermissionDenied``, ...) carrying
        status, code, message and the (password-redacted) statement.
        """
        body: dict[str, Any] = {"sql": statement}
        if params is not None:
            for i, p in enumerate(params, 1):
                if isinstance(p, list | dict | tuple | set | bytes):
                    raise ConfigError(
                        f"parameter ${i} is a {type(p).__name__}; KalamDB accepts only "
                        "null, bool, number and string parameters",
                        statement=redact_sql(statement),
                        hint="pass a scalar, or a JSON string for JSON columns",
                    )
            body["params"] = list(params)
        ns = namespace if namespace is not None else self.namespace
        if ns is not None:
            body["namespace_id"] = ns
        shown = redact_sql(statement)
        idempotent = _is_read_only(statement)
        retried_auth = False
        rate_attempt = 0
        while True:
            sent_at = time.time()
            log.debug("sql as %s: %s", self.user, shown)
            resp = self._request(
                "POST",
                SQL_PATH,
                json_body=body,
                headers={"Authorization": f"Bearer {self.token}"},
                statement=shown,
                idempotent=idempotent,
            )
            received_at = time.time()
            if resp.status_code == 200:
                payload = _body_json(resp)
                if payload is None:
                    raise ProtocolError(
                        _describe_non_json(resp),
                        status=200,
                        statement=shown,
                        hint="is the URL a KalamDB server?",
                    )
                if isinstance(payload, dict) and payload.get("status") == "error":
                    raise error_from_response(resp, statement=shown, sql_endpoint=True)
                results, took = _parse_results(payload, shown)
                return SqlResponse(
                    statement=statement,
                    results=results,
                    took_ms=took,
                    sent_at=sent_at,
                    received_at=received_at,
                )
            err = error_from_response(resp, statement=shown, sql_endpoint=True)
            if isinstance(err, TokenExpired) and not retried_auth:
                retried_auth = True
                self.refresh()
                continue
            if isinstance(err, RateLimited) and rate_attempt < len(_RETRY_BACKOFF):
                time.sleep(_RETRY_BACKOFF[rate_attempt])
                rate_attempt += 1
                continue
            raise err

    def execute_as(
        self,
        user: str,
        statement: str,
        params: Sequence[Any] | None = None,
        namespace: str | None = None,
    ) -> SqlResponse:
        """``EXECUTE AS USER 'user' (<statement>)``: run one statement in ``user``'s partition."""
        return self.sql(wrap_execute_as(user, statement), params=params, namespace=namespace)

    def query_all(
        self,
        select: str,
        order_by: str,
        *,
        params: Sequence[Any] | None = None,
        namespace: str | None = None,
        as_user: str | None = None,
        page_size: int = DEFAULT_MAX_QUERY_LIMIT,
    ) -> QueryResult:
        """Every row of ``select`` (no ORDER BY/LIMIT/OFFSET of its own), paged past the 50/1000 row
        caps with ``ORDER BY <order_by> LIMIT page_size OFFSET k``.

        ``order_by`` must make the order total (include the primary key), otherwise pages may
        overlap. ``page_size`` must not exceed the server's ``[limits] max_query_limit``.
        ``as_user`` wraps each page in ``EXECUTE AS USER``. Only consistent at a quiescent point.
        """
        base = select.strip().rstrip(";").rstrip()
        scan = _COMMENT.sub(" ", base)
        if re.search(r"\b(LIMIT|OFFSET)\b", scan, re.IGNORECASE) or re.search(
            r"\bORDER\s+BY\b", scan, re.IGNORECASE
        ):
            raise ConfigError(
                "query_all adds ORDER BY/LIMIT/OFFSET itself",
                statement=redact_sql(select),
                hint="remove ORDER BY/LIMIT/OFFSET from the query and pass order_by=",
            )
        if page_size < 1:
            raise ConfigError("page_size must be at least 1", hint="use page_size=1000")
        columns: tuple[Column, ...] | None = None
        rows: list[tuple[Any, ...]] = []
        wire: list[tuple[Any, ...]] = []
        offset = 0
        as_user_seen: str | None = None
        while True:
            page = f"{base} ORDER BY {order_by} LIMIT {page_size} OFFSET {offset}"
            if as_user is not None:
                page = wrap_execute_as(as_user, page)
            res = self.sql(page, params=params, namespace=namespace).result
            if columns is None:
                columns = res.columns
            as_user_seen = res.as_user
            rows.extend(res.rows)
            wire.extend(res.raw_rows)
            if len(res.rows) > page_size:
                raise ProtocolError(
                    f"asked for LIMIT {page_size} and got {len(res.rows)} rows", statement=page
                )
            if len(res.rows) < page_size:
                break
            offset += page_size
        return QueryResult(
            columns=columns or (),
            rows=tuple(rows),
            row_count=len(rows),
            as_user=as_user_seen,
            raw_rows=tuple(wire),
        )

    def rows(
        self,
        select: str,
        order_by: str,
        *,
        params: Sequence[Any] | None = None,
        as_user: str | None = None,
    ) -> list[dict[str, Any]]:
        """``query_all(...).dicts()``."""
        return self.query_all(select, order_by, params=params, as_user=as_user).dicts()

    # -- DDL helpers -------------------------------------------------------------------------

    def create_namespace(self, name: str, *, if_not_exists: bool = True) -> None:
        """``CREATE NAMESPACE [IF NOT EXISTS] name``."""
        ine = "IF NOT EXISTS " if if_not_exists else ""
        self.sql(f"CREATE NAMESPACE {ine}{quote_ident(name)}")

    def fresh_namespace(self, prefix: str = "kf") -> str:
        """Create and return a new namespace ``<prefix>_<10 hex>`` (isolates a run)."""
        name = f"{prefix}_{secrets.token_hex(5)}"
        self.create_namespace(name, if_not_exists=False)
        return name

    def drop_namespace(self, name: str, *, cascade: bool = True) -> None:
        """``DROP NAMESPACE IF EXISTS name [CASCADE]``."""
        self.sql(f"DROP NAMESPACE IF EXISTS {quote_ident(name)}{' CASCADE' if cascade else ''}")

    def create_user(
        self, name: str, password: str, role: str = "user", *, email: str | None = None
    ) -> None:
        """``CREATE USER name WITH PASSWORD '..' ROLE role [EMAIL '..']``."""
        stmt = (
            f"CREATE USER {quote_ident(name)} WITH PASSWORD {quote_literal(password)} ROLE {role}"
        )
        if email:
            stmt += f" EMAIL {quote_literal(email)}"
        self.sql(stmt)

    def create_table(
        self,
        table: str,
        columns: str,
        *,
        table_type: str = "USER",
        options: Mapping[str, str | int | bool] | None = None,
        if_not_exists: bool = False,
    ) -> None:
        """``CREATE TABLE ns.t (<columns>) WITH (TYPE='..', <options>)``.

        ``columns`` is the column list text, e.g. ``"id INT PRIMARY KEY, body TEXT"``;
        ``options`` are extra WITH options (``TTL_SECONDS``, ``ACCESS_LEVEL``, ``STORAGE_ID``...).
        """
        opts: dict[str, str | int | bool] = {"TYPE": table_type.upper()}
        opts.update(options or {})
        rendered = ", ".join(f"{k} = {_render_option(v)}" for k, v in opts.items())
        ine = "IF NOT EXISTS " if if_not_exists else ""
        self.sql(f"CREATE TABLE {ine}{quote_ident(table)} ({columns}) WITH ({rendered})")

    def drop_table(self, table: str) -> None:
        """``DROP TABLE IF EXISTS ns.t``."""
        self.sql(f"DROP TABLE IF EXISTS {quote_ident(table)}")

    # -- flush and jobs ----------------------------------------------------------------------

    def start_flush(self, table: str) -> str | None:
        """``STORAGE FLUSH TABLE ns.t``: the job id, or ``None`` when there is nothing to flush.

        Raises :class:`SqlError` with code ``FLUSH_ALREADY_RUNNING`` when a flush job of the table
        is already queued or running (KalamDB creates no second one).
        """
        if "." not in table:
            raise ConfigError(
                f"STORAGE FLUSH TABLE needs a qualified table name, got {table!r}",
                hint="pass 'namespace.table'",
            )
        stmt = f"STORAGE FLUSH TABLE {quote_ident(table)}"
        try:
            res = self.sql(stmt)
        except SqlError as exc:
            if "pre-validation returned false" in exc.message:
                return None  # HTTP_SQL.md §2.5: treat like "nothing to flush"
            raise
        message = " ".join(r.message or "" for r in res.results)
        m = _JOB_ID.search(message)
        if m:
            return m.group(1)
        if "no pending writes" in message:
            return None
        if "already queued or running" in message:
            raise SqlError(message, code="FLUSH_ALREADY_RUNNING", statement=stmt, status=200)
        raise ProtocolError(f"cannot find a job id in flush answer {message!r}", statement=stmt)

    def flush(self, table: str, *, timeout: float = 60.0, poll: float = 0.05) -> Job | None:
        """Flush ``ns.t`` and wait for the job; return its final ``system.jobs`` row.

        Returns ``None`` when the server created no job (nothing to flush). If a flush of the
        table is already running, waits for it and starts a new one, so the writes made before
        the call are covered. The job's status may be ``completed``, ``skipped``, ``failed`` or
        ``cancelled``; a job not final within ``timeout`` raises :class:`JobTimeout`.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                job_id = self.start_flush(table)
            except SqlError as exc:
                if exc.code != "FLUSH_ALREADY_RUNNING":
                    raise
                for job in self.jobs(job_type="flush"):
                    if job.table_id == table and not job.is_final:
                        self.wait_job(job.job_id, timeout=max(0.1, deadline - time.monotonic()))
                if time.monotonic() > deadline:
                    raise JobTimeout(
                        f"flush of {table} still blocked by a running flush after {timeout:.0f}s"
                    ) from None
                time.sleep(poll)
                continue
            if job_id is None:
                return None
            return self.wait_job(job_id, timeout=max(0.1, deadline - time.monotonic()), poll=poll)

    def job(self, job_id: str) -> Job | None:
        """The ``system.jobs`` row of ``job_id``, or ``None``."""
        return self.jobs_by_id([job_id]).get(job_id)

    def jobs_by_id(self, job_ids: Sequence[str]) -> dict[str, Job]:
        """The ``system.jobs`` rows of ``job_ids`` that exist, in one query."""
        if not job_ids:
            return {}
        ids = ", ".join(quote_literal(j) for j in job_ids)
        res = self.sql(f"SELECT * FROM system.jobs WHERE job_id IN ({ids})").result
        return {job.job_id: job for job in map(Job.from_row, res.dicts())}

    def wait_job(self, job_id: str, *, timeout: float = 60.0, poll: float = 0.05) -> Job:
        """Poll ``system.jobs`` until ``job_id`` is completed/failed/skipped/cancelled."""
        return self.wait_jobs([job_id], timeout=timeout, poll=poll)[job_id]

    def wait_jobs(
        self, job_ids: Sequence[str], *, timeout: float = 60.0, poll: float = 0.05
    ) -> dict[str, Job]:
        """Poll ``system.jobs`` (one query a round) until every job of ``job_ids`` has ended."""
        deadline = time.monotonic() + timeout
        delay = poll
        while True:
            rows = self.jobs_by_id(job_ids)
            running = [j for j in job_ids if j not in rows or not rows[j].is_final]
            if not running:
                return rows
            if time.monotonic() >= deadline:
                last = rows.get(running[0])
                raise JobTimeout(
                    f"job {running[0]} not finished after {timeout:.1f}s "
                    f"(last status {last.status if last else 'not visible'})",
                    code=last.status if last else None,
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    # -- system tables ---------------------------------------------------------------------

    def jobs(self, *, job_type: str | None = None, status: str | None = None) -> list[Job]:
        """``system.jobs`` rows, oldest first (optionally filtered)."""
        where = []
        if job_type:
            where.append(f"job_type = {quote_literal(job_type)}")
        if status:
            where.append(f"status = {quote_literal(status)}")
        sql = "SELECT * FROM system.jobs" + (" WHERE " + " AND ".join(where) if where else "")
        return [Job.from_row(r) for r in self.rows(sql, "created_at, job_id")]

    def live_queries(self) -> list[LiveQueryRow]:
        """``system.live``: active subscriptions on the answering node."""
        return [LiveQueryRow.from_row(r) for r in self.rows("SELECT * FROM system.live", "live_id")]

    def users(self, *, include_deleted: bool = False) -> list[UserRow]:
        """``system.users`` (password hashes are dropped, never kept)."""
        out = [UserRow.from_row(r) for r in self.rows("SELECT * FROM system.users", "user_id")]
        return out if include_deleted else [u for u in out if not u.deleted]

    def storages(self) -> list[StorageRow]:
        """``system.storages`` (credentials are dropped, never kept)."""
        return [
            StorageRow.from_row(r) for r in self.rows("SELECT * FROM system.storages", "storage_id")
        ]

    def tables(self, namespace: str | None = None) -> list[TableRow]:
        """``system.tables`` (optionally of one namespace)."""
        sql = "SELECT * FROM system.tables"
        if namespace is not None:
            sql += f" WHERE namespace_id = {quote_literal(namespace)}"
        return [TableRow.from_row(r) for r in self.rows(sql, "namespace_id, table_name")]


def wrap_execute_as(user: str, statement: str) -> str:
    """``EXECUTE AS USER '<user>' (<statement>)`` with quotes doubled and a trailing ';' removed."""
    inner = statement.strip().rstrip(";").rstrip()
    return f"EXECUTE AS USER {quote_literal(user)} ({inner})"


def _render_option(v: str | int | bool) -> str:
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    return quote_literal(v)


def _exc_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
