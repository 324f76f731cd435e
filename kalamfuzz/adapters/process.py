"""Launch and control a server process: the embedded sim or a ``kalamdb-server`` binary.

:class:`ServerProcess` writes a config (RUNNING.md keys) into a temporary work directory, picks a
free loopback port, sets the root password through ``KALAMDB_ROOT_PASSWORD``, starts the process
with that directory as its working directory, and waits for ``GET /health`` (and, on the real
server, for a leader row in ``system.cluster``). ``stop()`` sends SIGINT (KalamDB's only graceful
path), ``kill()`` SIGKILL, ``restart()`` starts again on the same data directory and port.

The sim is forked by a launcher that has imported it once (:mod:`kalamfuzz.adapters.launcher`),
so that a restart after a crash rule costs a fork, not a second of imports; a binary is started
as itself. It never leaves a process behind: children die with the launching thread
(``PR_SET_PDEATHSIG`` on Linux; forked sims with their launcher, which ends with its client), and
an ``atexit`` hook kills any that are still running. Inherited ``KALAMDB_*`` variables
are removed from the child's environment so that the config file is what counts.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from kalamfuzz.adapters import launcher
from kalamfuzz.adapters.sql import tls_context
from kalamfuzz.errors import ConfigError, KalamError, PortInUse, ServerStartError

if TYPE_CHECKING:
    from kalamfuzz.adapters.sql import SqlClient

__all__ = ["ServerProcess", "free_port", "render_toml"]

_PORT_IN_USE_MARKERS = (
    "address already in use",
    "address in use",
    "port is busy",
    "port busy",
    "already in use",
    "errno 98",
    "os error 98",
)
_LIVE: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


# ---------------------------------------------------------------------------------------------
# TOML (written by hand: no writer dependency)


def _toml_key(key: str) -> str:
    if key and all(c.isalnum() or c in "_-" for c in key):
        return key
    return _toml_str(key)


def _toml_str(value: str) -> str:
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, Path):
        return _toml_str(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"cannot write {type(value).__name__} {value!r} to TOML")


def render_toml(doc: Mapping[str, Any]) -> str:
    """Render a nested mapping as TOML (top-level scalars, then ``[tables]`` and sub-tables)."""
    lines: list[str] = []

    def table(prefix: str, body: Mapping[str, Any]) -> None:
        scalars = [(k, v) for k, v in body.items() if not isinstance(v, Mapping)]
        subs = [(k, v) for k, v in body.items() if isinstance(v, Mapping)]
        if prefix and (scalars or not subs):
            if lines:
                lines.append("")
            lines.append(f"[{prefix}]")
        for k, v in scalars:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in subs:
            table(f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k), v)

    table("", doc)
    return "\n".join(lines) + "\n"


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------------------------
# child process helpers


def _pdeathsig() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    prctl = libc.prctl
    pr_set_pdeathsig = 1
    sigkill = int(signal.SIGKILL)

    def set_pdeathsig() -> None:
        prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)

    return set_pdeathsig


_PREEXEC = _pdeathsig()


def _kill_all_at_exit() -> None:
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.kill()


atexit.register(_kill_all_at_exit)


def _tail(path: Path, lines: int) -> list[str]:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return data.splitlines()[-lines:]


# ---------------------------------------------------------------------------------------------


class ServerProcess:
    """One launched KalamDB-compatible server (the sim, or a ``kalamdb-server`` binary).

    Args:
        binary: path of a ``kalamdb-server`` executable; ``None`` runs the sim (what
            ``python -m kalamfuzz.sim`` runs, forked by the launcher).
        root_password: root's password (≥8 chars); generated when omitted.
        bugs: planted sim bugs to switch on (sim only; ``[sim] bugs``).
        config: overrides merged into the generated config, e.g.
            ``{"limits": {"max_query_limit": 500}}``.
        template: a TOML file to start from instead of the built-in defaults (``[server] port``,
            ``[storage] data_path`` and ``[logging] logs_path`` are always set by the launcher).
        workdir: directory for config, data and logs; a fresh temporary one when omitted
            (removed by :meth:`close` unless ``keep_workdir``).
        port: fixed HTTP port; a free one when omitted.
        env: extra environment for the child.
    """

    def __init__(
        self,
        *,
        binary: str | os.PathLike[str] | None = None,
        root_password: str | None = None,
        bugs: Sequence[str] = (),
        config: Mapping[str, Mapping[str, Any]] | None = None,
        template: str | os.PathLike[str] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        startup_timeout: float | None = None,
        log_level: str = "warn",
        keep_workdir: bool = False,
    ) -> None:
        self.binary = Path(binary) if binary is not None else None
        if self.binary is not None:
            if not self.binary.exists():
                raise ConfigError(
                    f"kalamdb-server binary {str(self.binary)!r} does not exist",
                    hint="pass --target binary:/path/to/kalamdb-server",
                )
            if not os.access(self.binary, os.X_OK) or self.binary.is_dir():
                raise ConfigError(
                    f"{str(self.binary)!r} is not an executable file",
                    hint=f"chmod +x {self.binary} or point at the kalamdb-server executable",
                )
        if bugs and self.binary is not None:
            raise ConfigError(
                "planted bugs exist only in the sim", hint="drop bugs= for a binary target"
            )
        if root_password is not None and len(root_password) < 8:
            raise ConfigError(
                "KalamDB refuses root passwords shorter than 8 characters",
                hint="use a longer password",
            )
        self.root_user = "root"
        self.root_password = root_password or f"kf-{secrets.token_urlsafe(12)}"
        self.bugs = tuple(bugs)
        self.host = host
        self._fixed_port = port
        self.port = port or 0
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout or (60.0 if self.binary else 30.0)
        self.log_level = log_level
        self._own_workdir = workdir is None
        self.keep_workdir = keep_workdir
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="kalamfuzz-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.logs_dir = self.workdir / "logs"
        self.config_path = self.workdir / "server.toml"
        self.log_path = self.workdir / "process.log"
        self._default_secret = secrets.token_hex(32)
        #: The secret the server signs tokens with, as its config file said at the last start
        #: (a template may name its own); None before the first.
        self.jwt_secret: str | None = None
        self._overrides: Mapping[str, Mapping[str, Any]] = config or {}
        self._template = Path(template) if template else None
        self._proc: subprocess.Popen[bytes] | launcher.Forked | None = None
        self._lock = threading.Lock()
        self.starts = 0

    def __repr__(self) -> str:
        kind = f"binary:{self.binary}" if self.binary else "sim"
        return f"ServerProcess({kind}, url={self.url!r}, pid={self.pid})"

    # -- properties -----------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return "binary" if self.binary else "sim"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def storage_dir(self) -> Path:
        """Base directory of the default ``local`` storage (``<data>/storage``)."""
        return self.data_dir / "storage"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def rss(self) -> int:
        """Resident set size of the server process in bytes."""
        import psutil

        if not self.alive or self.pid is None:
            raise ServerStartError("the server is not running", hint="call start()")
        try:
            return int(psutil.Process(self.pid).memory_info().rss)
        except psutil.Error as exc:
            raise KalamError(f"cannot read RSS of pid {self.pid}: {exc}") from None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the process output and of ``logs/server.log``."""
        out = _tail(self.log_path, lines)
        server_log = self.logs_dir / "server.log"
        if server_log.exists():
            out += ["--- logs/server.log ---", *_tail(server_log, lines)]
        return "\n".join(out)

    # -- config ---------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The config document that :meth:`start` writes."""
        if self._template is not None:
            try:
                base: dict[str, Any] = tomllib.loads(self._template.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(
                    f"cannot read config template {str(self._template)!r}: {exc}",
                    hint="pass a valid TOML file as template=",
                ) from None
        else:
            base = {
                "server": {"host": self.host},
                "storage": {
                    "shared_tables_template": "{namespace}/{tableName}",
                    "user_tables_template": "{namespace}/{tableName}/{userId}",
                },
                "limits": {"default_query_limit": 50, "max_query_limit": 1000},
                "logging": {"level": self.log_level},
                "performance": {},
                "auth": {"jwt_secret": self._default_secret, "bcrypt_cost": 4},
                "rate_limit": {
                    "max_queries_per_sec": 100000,
                    "max_requests_per_ip_per_sec": 200000,
                    "max_messages_per_sec": 100000,
                    "max_subscriptions_per_user": 10000,
                    "max_auth_requests_per_ip_per_sec": 10000,
                    "max_connections_per_ip": 10000,
                },
                "websocket": {
                    "client_timeout_secs": 10,
                    "auth_timeout_secs": 3,
                    "heartbeat_interval_secs": 5,
                },
                "flush": {"check_interval_seconds": 60},
                "stream": {"eviction_interval_seconds": 2},
                "files": {"staging_path": str(self.data_dir / "tmp")},
            }
        doc = _merge(base, self._overrides)
        doc = _merge(
            doc,
            {
                "server": {"host": self.host, "port": self.port},
                "storage": {"data_path": str(self.data_dir)},
                "logging": {"logs_path": str(self.logs_dir)},
            },
        )
        if self.binary is None:
            doc = _merge(doc, {"sim": {"bugs": list(self.bugs)}})
        return doc

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KALAMDB_", "KALAMSIM_"))}
        env["KALAMDB_ROOT_PASSWORD"] = self.root_password
        env.update(self.extra_env)
        return env

    def _command(self) -> list[str]:
        if self.binary is not None:
            return [str(self.binary), str(self.config_path)]
        return [sys.executable, "-m", "kalamfuzz.sim", str(self.config_path)]

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> ServerProcess:
        """Start the server and wait until it is healthy; raise :class:`ServerStartError`."""
        with self._lock:
            if self.alive:
                return self
            restarting = self.starts > 0
            if (
                self._fixed_port is not None
                and not restarting
                and not _port_is_free(self.host, self._fixed_port)
            ):
                raise PortInUse(
                    f"port {self._fixed_port} on {self.host} is already in use",
                    hint="stop whatever listens there, or omit port= to use a free port",
                )
            attempts = 4 if restarting else 3
            last: ServerStartError | None = None
            for _ in range(attempts):
                if not restarting and self._fixed_port is None:
                    self.port = free_port(self.host)
                try:
                    self._spawn_and_wait()
                    self.starts += 1
                    return self
                except PortInUse as exc:
                    last = exc
                    if self._fixed_port is not None and not restarting:
                        raise
                except ServerStartError as exc:
                    last = exc
                    if not restarting:  # a killed server may hold the RocksDB lock briefly
                        raise
                time.sleep(0.5)
            assert last is not None
            raise last

    def _spawn_and_wait(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        doc = self.config()
        secret = doc.get("auth", {}).get("jwt_secret")
        self.jwt_secret = secret if isinstance(secret, str) else None
        self.config_path.write_text(render_toml(doc))
        with self.log_path.open("ab") as log:
            log.write(f"=== start {time.strftime('%H:%M:%S')} port {self.port} ===\n".encode())
            log.flush()
            forked = self._fork_sim()
            if forked is not None:
                self._proc = forked
            else:
                self._popen(log)
        _LIVE.add(self)
        try:
            self._wait_healthy()
        except BaseException:
            self._terminate_hard()
            raise

    def _fork_sim(self) -> launcher.Forked | None:
        """The sim forked by the launcher, which has imported it once (a start in about a
        tenth of the time); None for a binary, or when the launcher cannot fork (then the
        sim starts as its own Python, as a binary does, and the log says why)."""
        if self.binary is not None:
            return None
        # Absolute: the launcher's working directory is the client's when it started.
        forked = launcher.spawn(
            [str(self.config_path.resolve())],
            str(self.workdir.resolve()),
            self._env(),
            str(self.log_path.resolve()),
        )
        if isinstance(forked, str):
            with self.log_path.open("a") as log:
                log.write(f"kalamfuzz: {forked}; starting python -m kalamfuzz.sim instead\n")
            return None
        return forked

    def _popen(self, log: IO[bytes]) -> None:
        try:
            self._proc = subprocess.Popen(
                self._command(),
                cwd=self.workdir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_PREEXEC,
            )
        except OSError as exc:
            raise ServerStartError(
                f"cannot execute {self._command()[0]}: {exc.strerror or exc}",
                hint="check the binary path and its permissions",
            ) from None

    def _startup_failure(self, why: str) -> ServerStartError:
        tail = self.log_tail(20)
        lowered = tail.lower()
        cls = ServerStartError
        hint = "see the log tail above; the work directory is " + str(self.workdir)
        if any(m in lowered for m in _PORT_IN_USE_MARKERS):
            cls = PortInUse
            why = f"port {self.port} is already in use ({why})"
            hint = "stop whatever listens there, or omit port= to use a free port"
        elif "no module named kalamfuzz.sim" in lowered or "kalamfuzz.sim.__main__" in lowered:
            hint = "the embedded sim is not installed: pip install -e . in the kalamfuzz checkout"
        last = next((ln.strip() for ln in reversed(tail.splitlines()) if ln.strip()), "")
        message = f"{self.kind} server {why}" + (f"; last log line: {last}" if last else "")
        err = cls(message, hint=hint)
        err.details = tail
        return err

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.02
        with httpx.Client(
            base_url=self.url, timeout=2.0, trust_env=False, verify=tls_context()
        ) as http:
            while True:
                assert self._proc is not None
                code = self._proc.poll()
                if code is not None:
                    raise self._startup_failure(f"exited with code {code} during start-up")
                try:
                    resp = http.get("/health")
                    if resp.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise self._startup_failure(
                        f"did not answer GET /health within {self.startup_timeout:.0f}s"
                    )
                time.sleep(delay)
                delay = min(delay * 1.5, 0.05)  # a restart is a fault rule's whole cost
        if self.binary is not None:
            self._wait_leader(deadline)

    def _wait_leader(self, deadline: float) -> None:
        from kalamfuzz.adapters.sql import SqlClient

        last_error = ""
        while time.monotonic() < deadline:
            try:
                with SqlClient(self.url, self.root_user, self.root_password) as client:
                    rows = client.sql("SELECT is_self, is_leader FROM system.cluster").dicts()
                if any(r.get("is_leader") for r in rows):
                    return
                last_error = f"no leader row yet ({rows})"
            except KalamError as exc:
                last_error = str(exc)
            time.sleep(0.2)
        raise self._startup_failure(f"never showed a leader in system.cluster: {last_error}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """Graceful stop (SIGINT), SIGKILL after ``timeout``; returns the exit code."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return proc.poll() if proc is not None else None
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._terminate_hard()
            return proc.poll()

    def kill(self) -> None:
        """SIGKILL the server (a crash) and reap it."""
        self._terminate_hard()

    def _terminate_hard(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)

    def restart(self, *, graceful: bool = True, timeout: float = 30.0) -> ServerProcess:
        """Stop (SIGINT, or SIGKILL if ``graceful=False``) and start on the same data and port."""
        if graceful:
            self.stop(timeout)
        else:
            self.kill()
        return self.start()

    def client(self, user: str | None = None, password: str | None = None) -> SqlClient:
        """A logged-in :class:`~kalamfuzz.adapters.sql.SqlClient` (root by default)."""
        from kalamfuzz.adapters.sql import SqlClient

        return SqlClient(self.url, user or self.root_user, password or self.root_password)

    def close(self) -> None:
        """Stop the server and remove the temporary work directory."""
        try:
            self.stop(10.0)
        finally:
            _LIVE.discard(self)
            if self._own_workdir and not self.keep_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
