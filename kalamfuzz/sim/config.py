"""The sim's configuration: the same TOML keys and KALAMDB_* overrides as kalamdb-server."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from attrs import define, field

from .bugs import parse_bug_names


class ConfigError(Exception):
    """A configuration mistake; the message names the fix."""


@define
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    data_path: Path = Path("./data")
    shared_tables_template: str = "{namespace}/{tableName}"
    user_tables_template: str = "{namespace}/{tableName}/{userId}"
    jwt_secret: str = "kalamsim-default-secret-not-for-production-use"
    jwt_expiry_hours: float = 24.0
    root_password: str = ""
    bcrypt_cost: int = 12
    allow_remote_setup: bool = False
    max_queries_per_sec: int = 100
    max_messages_per_sec: int = 50
    max_subscriptions_per_user: int = 10
    max_auth_requests_per_ip_per_sec: int = 20
    default_query_limit: int = 50
    max_query_limit: int = 1000
    client_timeout_secs: float = 10.0
    auth_timeout_secs: float = 3.0
    heartbeat_interval_secs: float = 5.0
    max_ws_message_size: int = 1048576
    flush_check_interval_seconds: float = 60.0
    flush_default_row_limit: int = 10000
    stream_eviction_interval_seconds: float = 60.0
    stream_default_max_buffer: int = 10000
    logs_path: Path = Path("./logs")
    log_level: str = "info"
    # sim-only knobs
    bugs: frozenset[str] = field(factory=frozenset)
    flush_delay_ms: int = 0
    worker_id: int = 1

    @property
    def storage_dir(self) -> Path:
        return self.data_path / "storage"


def _section(doc: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        value = doc.get(name)
        if isinstance(value, dict):
            return value
    return {}


def _typed(section: str, key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is Path and isinstance(value, str):
        return Path(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(
            f"config key [{section}] {key} must be {kind.__name__}, got {value!r}: fix the TOML value"
        )
    return value


# (section aliases, key, attribute, type)
_KEYS: list[tuple[tuple[str, ...], str, str, type]] = [
    (("server",), "host", "host", str),
    (("server",), "port", "port", int),
    (("storage",), "data_path", "data_path", Path),
    (("storage",), "shared_tables_template", "shared_tables_template", str),
    (("storage",), "user_tables_template", "user_tables_template", str),
    (("auth", "authentication"), "jwt_secret", "jwt_secret", str),
    (("auth", "authentication"), "jwt_expiry_hours", "jwt_expiry_hours", float),
    (("auth", "authentication"), "root_password", "root_password", str),
    (("auth", "authentication"), "bcrypt_cost", "bcrypt_cost", int),
    (("auth", "authentication"), "allow_remote_setup", "allow_remote_setup", bool),
    (("rate_limit",), "max_queries_per_sec", "max_queries_per_sec", int),
    (("rate_limit",), "max_messages_per_sec", "max_messages_per_sec", int),
    (("rate_limit",), "max_subscriptions_per_user", "max_subscriptions_per_user", int),
    (("rate_limit",), "max_auth_requests_per_ip_per_sec", "max_auth_requests_per_ip_per_sec", int),
    (("limits",), "default_query_limit", "default_query_limit", int),
    (("limits",), "max_query_limit", "max_query_limit", int),
    (("websocket",), "client_timeout_secs", "client_timeout_secs", float),
    (("websocket",), "auth_timeout_secs", "auth_timeout_secs", float),
    (("websocket",), "heartbeat_interval_secs", "heartbeat_interval_secs", float),
    (("security",), "max_ws_message_size", "max_ws_message_size", int),
    (("flush",), "check_interval_seconds", "flush_check_interval_seconds", float),
    (("flush",), "default_row_limit", "flush_default_row_limit", int),
    (("stream",), "eviction_interval_seconds", "stream_eviction_interval_seconds", float),
    (("stream",), "default_max_buffer", "stream_default_max_buffer", int),
    (("logging",), "logs_path", "logs_path", Path),
    (("logging",), "level", "log_level", str),
    (("sim",), "flush_delay_ms", "flush_delay_ms", int),
    (("sim",), "worker_id", "worker_id", int),
]

# KALAMDB_* overrides kalamdb-server honours (RUNNING.md), applied after the TOML.
_ENV: list[tuple[str, str, type]] = [
    ("KALAMDB_SERVER_HOST", "host", str),
    ("KALAMDB_SERVER_PORT", "port", int),
    ("KALAMDB_DATA_DIR", "data_path", Path),
    ("KALAMDB_LOGS_DIR", "logs_path", Path),
    ("KALAMDB_LOG_LEVEL", "log_level", str),
    ("KALAMDB_JWT_SECRET", "jwt_secret", str),
    ("KALAMDB_JWT_EXPIRY_HOURS", "jwt_expiry_hours", float),
    ("KALAMDB_ROOT_PASSWORD", "root_password", str),
    ("KALAMDB_ALLOW_REMOTE_SETUP", "allow_remote_setup", bool),
    ("KALAMDB_RATE_LIMIT_AUTH_REQUESTS_PER_IP_PER_SEC", "max_auth_requests_per_ip_per_sec", int),
    ("KALAMDB_WEBSOCKET_CLIENT_TIMEOUT_SECS", "client_timeout_secs", float),
    ("KALAMDB_WEBSOCKET_AUTH_TIMEOUT_SECS", "auth_timeout_secs", float),
    ("KALAMDB_WEBSOCKET_HEARTBEAT_INTERVAL_SECS", "heartbeat_interval_secs", float),
]


def _env_value(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1")
        return kind(raw)
    except ValueError:
        raise ConfigError(
            f"environment variable {name}={raw!r} is not a valid {kind.__name__}: fix or unset it"
        ) from None


def load_config(path: Path | None, environ: dict[str, str] | None = None) -> SimConfig:
    """Read a kalamdb-server style TOML file, then apply KALAMDB_* and KALAMSIM_BUGS overrides."""
    env = dict(os.environ if environ is None else environ)
    doc: dict[str, Any] = {}
    if path is not None:
        try:
            doc = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"config file {path} does not exist: pass the path of a server.toml"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"config file {path} is not valid TOML ({exc}): fix the syntax"
            ) from None
    cfg = SimConfig()
    for sections, key, attr, kind in _KEYS:
        section = _section(doc, *sections)
        if key in section:
            setattr(cfg, attr, _typed(sections[0], key, section[key], kind))
    for name, attr, kind in _ENV:
        if name in env and env[name] != "":
            setattr(cfg, attr, _env_value(name, env[name], kind))
    bug_names: list[str] = []
    sim = _section(doc, "sim")
    if "bugs" in sim:
        if not isinstance(sim["bugs"], list) or not all(isinstance(b, str) for b in sim["bugs"]):
            raise ConfigError(
                'config key [sim] bugs must be a list of names, e.g. bugs = ["dup_pk_cold"]'
            )
        bug_names.extend(sim["bugs"])
    if env.get("KALAMSIM_BUGS"):
        bug_names.extend(env["KALAMSIM_BUGS"].split(","))
    cfg.bugs = parse_bug_names(bug_names)
    if not 1 <= cfg.port <= 65535 and cfg.port != 0:
        raise ConfigError(
            f"[server] port {cfg.port} is out of range: use 1..65535 (or 0 for any free port)"
        )
    if cfg.default_query_limit < 1 or cfg.max_query_limit < cfg.default_query_limit:
        raise ConfigError("[limits] need 1 <= default_query_limit <= max_query_limit")
    return cfg
