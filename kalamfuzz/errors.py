"""The one exception hierarchy of kalamfuzz.

Every error raised by kalamfuzz is a :class:`KalamError`. It carries what a KalamDB engineer needs to
act on it: the HTTP ``status`` (if an HTTP exchange happened), the server's ``code`` (for example
``SQL_EXECUTION_ERROR``, ``PERMISSION_DENIED``, ``setup_required``), the ``message`` and the
``statement`` that was sent. ``str(error)`` is always one line.

Hierarchy::

    KalamError
    ├── ConfigError            a configuration or usage mistake; the message names the fix
    ├── TargetUnreachable      no TCP connection to the server
    ├── ProtocolError          the server answered something the protocol does not allow
    ├── OutcomeUnknown         a request was sent but no answer came (it may or may not have run)
    ├── AuthError              401: wrong credentials, missing or invalid token
    │   ├── SetupRequired      428: the server needs first-run setup
    │   └── TokenExpired       401 TOKEN_EXPIRED
    ├── PermissionDenied       403 / PERMISSION_DENIED / UNAUTHORIZED
    ├── SqlError               400: the statement was rejected (INVALID_SQL, SQL_EXECUTION_ERROR, ...)
    ├── RateLimited            429
    ├── ServerError            5xx
    ├── JobError               a job did not finish well
    │   ├── JobFailed          ended failed/cancelled (when the caller asked to raise)
    │   └── JobTimeout         did not finish in time
    ├── LiveError              WebSocket live queries
    │   ├── SubscriptionError  the server answered a subscription with an ``error`` message
    │   └── ConnectionDropped  the socket closed or broke
    ├── ServerStartError       a launched server exited or never became healthy (log tail attached)
    │   └── PortInUse          the requested port is already bound
    └── ColdArtifactError      a manifest or Parquet file could not be read

Secrets never appear in messages: the client never puts passwords or tokens into an error.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ColdArtifactError",
    "ConfigError",
    "ConnectionDropped",
    "JobError",
    "JobFailed",
    "JobTimeout",
    "KalamError",
    "LiveError",
    "OutcomeUnknown",
    "PermissionDenied",
    "PortInUse",
    "ProtocolError",
    "RateLimited",
    "ServerError",
    "ServerStartError",
    "SetupRequired",
    "SqlError",
    "SubscriptionError",
    "TargetUnreachable",
    "TokenExpired",
]

_MAX_STATEMENT_IN_MESSAGE = 200


def _one_line(text: str) -> str:
    return " ".join(text.split())


class KalamError(Exception):
    """Root of all kalamfuzz errors.

    Attributes:
        message: human-readable cause (one line).
        status: HTTP status code, or ``None`` when no HTTP answer was involved.
        code: the server's error code (``error.code`` of the SQL envelope, ``error`` of the auth
            envelope, or the WebSocket ``code``), or ``None``.
        statement: the SQL statement sent, or ``None``.
        details: the server's ``error.details`` (admins get the failing SQL there), or ``None``.
        hint: what to do about it (shown after the message), or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        statement: str | None = None,
        details: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = _one_line(message)
        self.status = status
        self.code = code
        self.statement = statement
        self.details = details
        self.hint = _one_line(hint) if hint else None
        super().__init__(self.message)

    def __str__(self) -> str:
        parts: list[str] = []
        head = []
        if self.status is not None:
            head.append(str(self.status))
        if self.code:
            head.append(self.code)
        if head:
            parts.append(f"[{' '.join(head)}]")
        parts.append(self.message)
        if self.statement:
            stmt = _one_line(self.statement)
            if len(stmt) > _MAX_STATEMENT_IN_MESSAGE:
                stmt = stmt[: _MAX_STATEMENT_IN_MESSAGE - 3] + "..."
            parts.append(f"(statement: {stmt})")
        if self.hint:
            parts.append(f"-- {self.hint}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"code={self.code!r}, statement={self.statement!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:  # picklable for multiprocessing / pytest-xdist
        return (
            _rebuild,
            (
                type(self),
                self.message,
                self.status,
                self.code,
                self.statement,
                self.details,
                self.hint,
            ),
        )


def _rebuild(
    cls: type[KalamError],
    message: str,
    status: int | None,
    code: str | None,
    statement: str | None,
    details: str | None,
    hint: str | None,
) -> KalamError:
    err = cls.__new__(cls)
    KalamError.__init__(
        err,
        message,
        status=status,
        code=code,
        statement=statement,
        details=details,
        hint=hint,
    )
    return err


class ConfigError(KalamError):
    """A configuration or usage mistake. The message names the fix."""


class TargetUnreachable(KalamError):
    """No connection could be made to the server (refused, DNS, connect timeout)."""


class ProtocolError(KalamError):
    """The server answered something KalamDB's protocol does not allow (non-JSON, wrong shape)."""


class OutcomeUnknown(KalamError):
    """The request was sent but no answer arrived: it may or may not have been executed."""


class AuthError(KalamError):
    """Authentication failed (HTTP 401): wrong credentials, missing or invalid token."""


class SetupRequired(AuthError):
    """The server needs first-run setup (HTTP 428 ``setup_required``)."""


class TokenExpired(AuthError):
    """The access token expired (HTTP 401 ``TOKEN_EXPIRED``)."""


class PermissionDenied(KalamError):
    """The caller's role may not do this (HTTP 403 ``PERMISSION_DENIED`` or WS ``UNAUTHORIZED``)."""


class SqlError(KalamError):
    """The server rejected the statement (HTTP 400); ``code`` says why."""


class RateLimited(KalamError):
    """The server's rate limit was hit (HTTP 429)."""


class ServerError(KalamError):
    """The server failed (HTTP 5xx)."""


class JobError(KalamError):
    """A server job (flush, compact, ...) did not finish well."""


class JobFailed(JobError):
    """A job ended ``failed`` or ``cancelled``."""


class JobTimeout(JobError):
    """A job did not reach a final status in time."""


class LiveError(KalamError):
    """A live-query (WebSocket) error."""


class SubscriptionError(LiveError):
    """The server answered a subscription with an ``error`` message."""


class ConnectionDropped(LiveError):
    """The WebSocket connection closed or broke."""


class ServerStartError(KalamError):
    """A launched server process exited or never became healthy."""


class PortInUse(ServerStartError):
    """The requested port is already bound by another process."""


class ColdArtifactError(KalamError):
    """A cold-tier artifact (manifest.json, batch-*.parquet) could not be read."""
