"""Target selection: which server the machines talk to.

``Target.parse(spec)`` accepts ``sim`` (default), ``binary:PATH`` or ``url:URL``; without a spec it
reads ``KALAMFUZZ_TARGET``. Credentials: launched targets get a generated root password (or
``KALAMFUZZ_PASSWORD`` if set); a ``url`` target needs ``KALAMFUZZ_PASSWORD`` (user
``KALAMFUZZ_USER``, default ``root``). A url target's data directory can be named with
``KALAMFUZZ_DATA_DIR`` when the server runs on this machine.

:attr:`Target.capabilities` says what is possible; :meth:`Target.skip_reason` gives the stated
reason to skip a check that needs process control or file access.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from attrs import frozen

from kalamfuzz.adapters.process import ServerProcess
from kalamfuzz.adapters.sql import SqlClient, tls_context
from kalamfuzz.adapters.websocket import LiveClient
from kalamfuzz.errors import ConfigError, ProtocolError, TargetUnreachable

__all__ = ["Capabilities", "Target"]

ENV_TARGET = "KALAMFUZZ_TARGET"
ENV_USER = "KALAMFUZZ_USER"
ENV_PASSWORD = "KALAMFUZZ_PASSWORD"
ENV_DATA_DIR = "KALAMFUZZ_DATA_DIR"

_SPEC_HINT = "use --target sim | binary:/path/to/kalamdb-server | url:http://HOST:PORT"


@frozen
class Capabilities:
    """What a target allows. ``why_not`` maps a missing capability to the reason."""

    can_kill: bool
    can_restart: bool
    can_read_data_dir: bool
    can_plant_bugs: bool
    why_not: Mapping[str, str]


class Target:
    """A server to test: launched (``sim``, ``binary``) or already running (``url``)."""

    def __init__(
        self,
        kind: str,
        *,
        binary: Path | None = None,
        url: str | None = None,
        user: str = "root",
        password: str | None = None,
        data_dir: Path | None = None,
        bugs: Sequence[str] = (),
        config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if kind not in ("sim", "binary", "url"):
            raise ConfigError(f"unknown target kind {kind!r}", hint=_SPEC_HINT)
        if bugs and kind != "sim":
            raise ConfigError(
                f"planted bugs need the sim target, not {kind}", hint="use --target sim"
            )
        self.kind = kind
        self.binary = binary
        self._url = url
        self.user = user
        self._password = password
        self._data_dir = data_dir
        self.bugs = tuple(bugs)
        self.config = config
        self.process: ServerProcess | None = None

    def __repr__(self) -> str:
        where = {"sim": "sim", "binary": f"binary:{self.binary}", "url": f"url:{self._url}"}
        return f"Target({where[self.kind]}, user={self.user!r})"

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def parse(
        cls,
        spec: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        bugs: Sequence[str] = (),
        config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Target:
        """Build a target from ``sim | binary:PATH | url:URL`` (default: ``$KALAMFUZZ_TARGET`` or
        ``sim``); raise :class:`ConfigError` naming the fix on a bad spec or missing credentials."""
        env = os.environ if env is None else env
        raw = spec if spec is not None else env.get(ENV_TARGET, "") or "sim"
        raw = raw.strip()
        user = env.get(ENV_USER) or "root"
        password = env.get(ENV_PASSWORD) or None
        if raw == "sim":
            return cls("sim", user="root", password=password, bugs=bugs, config=config)
        kind, sep, rest = raw.partition(":")
        if not sep or not rest:
            raise ConfigError(f"bad target {raw!r}", hint=_SPEC_HINT)
        if kind == "binary":
            path = Path(rest).expanduser()
            if not path.is_file():
                raise ConfigError(
                    f"kalamdb-server binary {rest!r} not found",
                    hint="give the path of the executable",
                )
            if not os.access(path, os.X_OK):
                raise ConfigError(f"{rest!r} is not executable", hint=f"chmod +x {rest}")
            return cls("binary", binary=path, password=password, config=config, bugs=bugs)
        if kind == "url":
            parts = urlsplit(rest)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    f"bad target URL {rest!r}", hint="use url:http://HOST:PORT (no path)"
                )
            if password is None:
                raise ConfigError(
                    "a url target needs credentials",
                    hint=f"set {ENV_PASSWORD} (and {ENV_USER}, default root)",
                )
            data_dir = env.get(ENV_DATA_DIR)
            return cls(
                "url",
                url=rest.rstrip("/"),
                user=user,
                password=password,
                data_dir=Path(data_dir) if data_dir else None,
                bugs=bugs,
            )
        raise ConfigError(f"unknown target kind {kind!r} in {raw!r}", hint=_SPEC_HINT)

    # -- capabilities ---------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        launched = self.kind in ("sim", "binary")
        why: dict[str, str] = {}
        if not launched:
            why["kill"] = "a url target is not a process kalamfuzz started; use sim or binary:PATH"
            why["restart"] = why["kill"]
        readable = launched or (self._data_dir is not None and self._data_dir.is_dir())
        if not readable:
            why["data_dir"] = (
                f"the data directory of a url target is unknown; set {ENV_DATA_DIR} if the "
                "server runs on this machine"
            )
        if self.kind != "sim":
            why["bugs"] = "planted bugs exist only in the sim"
        if self.kind == "url" and urlsplit(self._url or "").scheme != "http":
            why["proxy"] = (
                "network faults go through kalamfuzz's plain TCP proxy, which cannot stand in "
                "for an https server; use its http address"
            )
        return Capabilities(
            can_kill=launched,
            can_restart=launched,
            can_read_data_dir=readable,
            can_plant_bugs=self.kind == "sim",
            why_not=why,
        )

    def skip_reason(self, need: str) -> str | None:
        """``None`` if the target allows ``need`` (``kill``, ``restart``, ``data_dir``, ``bugs``,
        ``proxy``),
        else the reason to report the check as skipped."""
        if need not in ("kill", "restart", "data_dir", "bugs", "proxy"):
            raise ConfigError(
                f"unknown capability {need!r}", hint="use kill, restart, data_dir, bugs or proxy"
            )
        return self.capabilities.why_not.get(need)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Target:
        """Launch the server (sim/binary) or check that the url target answers and accepts the
        credentials. Idempotent."""
        if self.kind == "url":
            self._check_url()
            return self
        if self.process is None:
            self.process = ServerProcess(
                binary=self.binary,
                root_password=self._password,
                bugs=self.bugs,
                config=self.config,
            )
        self.process.start()
        return self

    def _check_url(self) -> None:
        assert self._url is not None
        try:
            with httpx.Client(base_url=self._url, timeout=5.0, verify=tls_context()) as http:
                resp = http.get("/v1/api/healthcheck")
        except httpx.HTTPError as exc:
            raise TargetUnreachable(
                f"cannot reach {self._url}: {exc or type(exc).__name__}",
                hint=f"start the server or fix {ENV_TARGET}",
            ) from None
        # any HTTP answer means "up" (403 = localhost-only health endpoint on a remote server)
        if resp.status_code == 200:
            try:
                body = resp.json()
            except ValueError:
                raise ProtocolError(
                    f"{self._url}/v1/api/healthcheck answered non-JSON",
                    status=200,
                    hint="is this a KalamDB server?",
                ) from None
            if not isinstance(body, dict) or "status" not in body:
                raise ProtocolError(
                    f"{self._url} is not a KalamDB server (healthcheck: {str(body)[:80]})",
                    hint="point the url target at KalamDB's HTTP port",
                )
        self.client().close()

    def stop(self) -> None:
        """Stop and clean up a launched server (no-op for url)."""
        if self.process is not None:
            self.process.close()
            self.process = None

    def __enter__(self) -> Target:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- access ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.kind == "url":
            assert self._url is not None
            return self._url
        if self.process is None:
            raise ConfigError("the target is not started", hint="call target.start() first")
        return self.process.url

    @property
    def password(self) -> str:
        if self.process is not None:
            return self.process.root_password
        if self._password is None:
            raise ConfigError("the target is not started", hint="call target.start() first")
        return self._password

    @property
    def jwt_secret(self) -> str | None:
        """The secret the server signs tokens with: known for a target this project starts
        (its config), None for a running server (``url:``)."""
        return self.process.jwt_secret if self.process is not None else None

    @property
    def data_dir(self) -> Path:
        """The server's data directory; raises :class:`ConfigError` if unknown (see skip_reason)."""
        if self.process is not None:
            return self.process.data_dir
        if self._data_dir is not None:
            return self._data_dir
        raise ConfigError(
            self.skip_reason("data_dir") or "data directory unknown", hint=f"set {ENV_DATA_DIR}"
        )

    @property
    def storage_dir(self) -> Path:
        """Base directory of the default ``local`` storage (``<data>/storage``)."""
        return self.data_dir / "storage"

    def client(self, user: str | None = None, password: str | None = None) -> SqlClient:
        """A logged-in SQL client (the target's admin user unless ``user``/``password`` given)."""
        if user is not None and password is None:
            raise ConfigError(f"no password given for user {user!r}", hint="pass password=")
        return SqlClient(self.url, user or self.user, password or self.password)

    def server_version(self) -> str:
        """The server's name and version as its health endpoint reports them (for reports)."""
        with self.client() as c:
            body = c.health()
        version = body.get("version") or "unknown version"
        built = body.get("build_date")
        name = "kalamfuzz sim" if self.kind == "sim" else "kalamdb-server"
        return f"{name} {version}" + (f" (built {built})" if built else "")

    def live(self, client: SqlClient | None = None, **kwargs: Any) -> LiveClient:
        """A connected live client authenticated as ``client``'s user (admin by default)."""
        return LiveClient(self.url, client if client is not None else self.client(), **kwargs)

    def _require(self, need: str) -> ServerProcess:
        reason = self.skip_reason(need)
        if reason is not None or self.process is None:
            raise ConfigError(
                reason or "the target is not started", hint="use a sim or binary target"
            )
        return self.process

    def kill(self) -> None:
        """SIGKILL the server (launched targets only)."""
        self._require("kill").kill()

    def restart(self, *, graceful: bool = True) -> None:
        """Restart on the same data directory and port (launched targets only)."""
        self._require("restart").restart(graceful=graceful)
