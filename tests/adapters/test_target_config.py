"""Target parsing, capabilities, config rendering and launcher input checks (no server needed)."""

from __future__ import annotations

import os
import socket
import stat
import tomllib
from pathlib import Path

import pytest

from kalamfuzz.adapters import ServerProcess, Target, block_directory
from kalamfuzz.adapters.process import render_toml
from kalamfuzz.adapters.websocket import ws_url
from kalamfuzz.errors import ConfigError, PortInUse, ServerStartError, TargetUnreachable


def test_default_target_is_sim_and_env_is_read() -> None:
    assert Target.parse(env={}).kind == "sim"
    t = Target.parse(
        env={
            "KALAMFUZZ_TARGET": "url:http://127.0.0.1:1",
            "KALAMFUZZ_PASSWORD": "pw-12345678",
            "KALAMFUZZ_USER": "admin",
        }
    )
    assert (t.kind, t.url, t.user) == ("url", "http://127.0.0.1:1", "admin")
    assert "pw-12345678" not in repr(t)


def test_url_target_capabilities_have_stated_reasons() -> None:
    t = Target.parse("url:http://10.0.0.1:8080", env={"KALAMFUZZ_PASSWORD": "x" * 8})
    caps = t.capabilities
    assert not caps.can_kill and not caps.can_read_data_dir and not caps.can_plant_bugs
    assert "url target" in (t.skip_reason("kill") or "")
    assert "KALAMFUZZ_DATA_DIR" in (t.skip_reason("data_dir") or "")
    with pytest.raises(ConfigError):
        t.kill()
    with pytest.raises(ConfigError, match="KALAMFUZZ_DATA_DIR"):
        _ = t.data_dir


def test_network_faults_need_a_plain_http_target() -> None:
    env = {"KALAMFUZZ_PASSWORD": "x" * 8}
    assert Target.parse("url:http://10.0.0.1:8080", env=env).skip_reason("proxy") is None
    assert Target.parse("sim").skip_reason("proxy") is None
    why = Target.parse("url:https://db.example:443", env=env).skip_reason("proxy")
    assert why is not None and "use its http address" in why


def test_url_target_with_data_dir_can_read_it(tmp_path: Path) -> None:
    t = Target.parse(
        "url:http://h:1", env={"KALAMFUZZ_PASSWORD": "x" * 8, "KALAMFUZZ_DATA_DIR": str(tmp_path)}
    )
    assert t.skip_reason("data_dir") is None and t.storage_dir == tmp_path / "storage"


def test_sim_target_capabilities() -> None:
    caps = Target.parse("sim").capabilities
    assert caps.can_kill and caps.can_restart and caps.can_read_data_dir and caps.can_plant_bugs


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("simm", "bad target"),
        ("binary:", "bad target"),
        ("binary:/nonexistent/kalamdb-server", "not found"),
        ("url:ftp://x", "bad target URL"),
        ("url:http://h:1", "KALAMFUZZ_PASSWORD"),
        ("docker:x", "unknown target kind"),
    ],
)
def test_bad_specs_are_one_line_config_errors(spec: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        Target.parse(spec, env={})
    text = str(info.value)
    assert "\n" not in text and info.value.hint and f"-- {info.value.hint}" in text


def test_binary_target_must_be_executable(tmp_path: Path) -> None:
    f = tmp_path / "kalamdb-server"
    f.write_text("#!/bin/sh\n")
    with pytest.raises(ConfigError, match="not executable"):
        Target.parse(f"binary:{f}", env={})
    f.chmod(f.stat().st_mode | stat.S_IXUSR)
    assert Target.parse(f"binary:{f}", env={}).kind == "binary"
    with pytest.raises(ConfigError, match="sim"):
        Target.parse(f"binary:{f}", env={}, bugs=["x"])


def test_unreachable_url_target() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = Target.parse(f"url:http://127.0.0.1:{port}", env={"KALAMFUZZ_PASSWORD": "x" * 8})
    with pytest.raises(TargetUnreachable, match="cannot reach"):
        t.start()


def test_render_toml_round_trips() -> None:
    doc = {
        "server": {"host": "127.0.0.1", "port": 8080},
        "storage": {"data_path": '/tmp/a "b"\\c', "t": "{namespace}/{tableName}"},
        "limits": {"x": 1.5, "flag": True, "names": ["a", "b"]},
        "performance": {},
        "nested": {"inner": {"k": "v\n\x7f"}},
    }
    assert tomllib.loads(render_toml(doc)) == doc


def test_server_process_config_has_launcher_keys_and_overrides(tmp_path: Path) -> None:
    p = ServerProcess(
        workdir=tmp_path, bugs=["lost_update"], config={"limits": {"max_query_limit": 500}}
    )
    doc = p.config()
    assert doc["storage"]["data_path"] == str(tmp_path / "data")
    assert doc["logging"]["logs_path"] == str(tmp_path / "logs")
    assert doc["limits"] == {"default_query_limit": 50, "max_query_limit": 500}
    assert doc["sim"]["bugs"] == ["lost_update"]
    assert doc["rate_limit"]["max_subscriptions_per_user"] >= 1000
    assert len(doc["auth"]["jwt_secret"]) >= 32
    for section in ("server", "storage", "limits", "logging", "performance"):
        assert section in doc  # required by kalamdb-server (RUNNING.md)
    tomllib.loads(render_toml(doc))
    env = p._env()
    assert env["KALAMDB_ROOT_PASSWORD"] == p.root_password and len(p.root_password) >= 8


def test_server_process_template(tmp_path: Path) -> None:
    tpl = tmp_path / "tpl.toml"
    tpl.write_text('[server]\nhost = "0.0.0.0"\nport = 1\n[limits]\nmax_query_limit = 7\n')
    p = ServerProcess(workdir=tmp_path / "w", template=tpl)
    doc = p.config()
    assert doc["limits"]["max_query_limit"] == 7 and doc["server"]["host"] == "127.0.0.1"
    tpl.write_text("[broken")
    with pytest.raises(ConfigError, match="template"):
        ServerProcess(workdir=tmp_path / "w2", template=tpl).config()


def test_launcher_input_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ServerProcess(binary=tmp_path / "nope")
    with pytest.raises(ConfigError, match="8 characters"):
        ServerProcess(root_password="short")


def test_port_in_use_is_detected_before_start(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = ServerProcess(workdir=tmp_path, port=port)
        with pytest.raises(PortInUse, match=f"port {port}") as info:
            p.start()
        assert "\n" not in str(info.value)
        assert p.pid is None


def test_binary_exiting_at_startup_shows_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "kalamdb-server"
    fake.write_text(
        "#!/bin/sh\necho 'loading config' \necho 'Error: invalid config key' >&2\nexit 3\n"
    )
    fake.chmod(0o755)
    p = ServerProcess(binary=fake, workdir=tmp_path / "w", startup_timeout=10)
    with pytest.raises(ServerStartError) as info:
        p.start()
    text = str(info.value)
    assert "exited with code 3" in text and "invalid config key" in text and "\n" not in text
    assert "invalid config key" in (info.value.details or "")
    assert not p.alive


def test_binary_reporting_port_busy_is_port_in_use(tmp_path: Path) -> None:
    fake = tmp_path / "kalamdb-server"
    fake.write_text("#!/bin/sh\necho 'Error: Address already in use (os error 98)' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(PortInUse, match="already in use"):
        ServerProcess(binary=fake, workdir=tmp_path / "w", port=None).start()


def test_ws_url() -> None:
    assert ws_url("http://127.0.0.1:8080/") == "ws://127.0.0.1:8080/v1/ws?compress=false"
    assert ws_url("https://db.example:443", compress=True) == "wss://db.example:443/v1/ws"
    with pytest.raises(ConfigError):
        ws_url("127.0.0.1:8080")


def test_block_directory_replaces_and_restores(tmp_path: Path) -> None:
    d = tmp_path / "storage" / "ns" / "t"
    d.mkdir(parents=True)
    (d / "batch-0.parquet").write_bytes(b"x")
    with block_directory(d) as blocked:
        assert d.is_file() and blocked.blocked
        with pytest.raises(OSError):
            (d / "batch-1.parquet").write_bytes(b"y")
        with pytest.raises(OSError):
            os.makedirs(d / "alice")
    assert d.is_dir() and (d / "batch-0.parquet").read_bytes() == b"x"
    fresh = tmp_path / "storage" / "ns" / "u"
    with block_directory(fresh):
        assert fresh.is_file()
    assert not fresh.exists()
