"""ServerProcess and Target lifecycle against real launches of the sim.

These use their own servers (not the session one), because they kill and restart them.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator

import psutil
import pytest

from kalamfuzz.adapters import LiveClient, ServerProcess, SqlClient, Target, launcher
from kalamfuzz.errors import ConnectionDropped, TargetUnreachable


@pytest.fixture(scope="module")
def proc() -> Iterator[ServerProcess]:
    if Target.parse().kind == "url":
        pytest.skip("a url target is not a process kalamfuzz started; use sim or binary:PATH")
    binary = Target.parse().binary
    p = ServerProcess(
        binary=binary,
        config={"websocket": {"client_timeout_secs": 2, "heartbeat_interval_secs": 1}},
    )
    p.start()
    yield p
    p.close()


def test_started_process_exposes_url_pid_rss_and_logs(proc: ServerProcess) -> None:
    assert proc.alive and proc.pid is not None and psutil.pid_exists(proc.pid)
    assert proc.url == f"http://127.0.0.1:{proc.port}"
    assert proc.rss() > 1_000_000
    assert proc.config_path.exists() and proc.data_dir.is_dir()
    assert f"port {proc.port}" in proc.log_tail()
    with proc.client() as c:
        assert c.role == "system"


def test_keepalive_pings_outlive_the_server_timeout(proc: ServerProcess) -> None:
    # this server drops clients silent for 2 s; pings every 0.5 s keep the socket open
    with proc.client() as c, LiveClient(proc.url, c, ping_interval=0.5) as live:
        time.sleep(3.5)
        assert live.connected
        ns = c.fresh_namespace()
        c.create_table(f"{ns}.k", "id INT PRIMARY KEY", table_type="SHARED")
        sub = live.subscribe(f"SELECT * FROM {ns}.k")
        c.sql(f"INSERT INTO {ns}.k (id) VALUES (1)")
        sub.wait_changes(1)


def test_restart_after_kill_keeps_data_and_resumes_live(proc: ServerProcess) -> None:
    with proc.client() as c:
        ns = c.fresh_namespace()
        c.create_table(f"{ns}.t", "id INT PRIMARY KEY, body TEXT", table_type="SHARED")
        c.sql(f"INSERT INTO {ns}.t (id, body) VALUES (1, 'hot')")
        c.sql(f"INSERT INTO {ns}.t (id, body) VALUES (2, 'cold')")
        assert c.flush(f"{ns}.t") is not None
        c.sql(f"INSERT INTO {ns}.t (id, body) VALUES (3, 'hot again')")
        live = LiveClient(proc.url, c)
        sub = live.subscribe(f"SELECT * FROM {ns}.t")
        old_pid, url = proc.pid, proc.url
        proc.kill()
        assert not proc.alive
        sub.wait_for(lambda s: s.dropped, timeout=5)
        assert not live.connected
        with pytest.raises(ConnectionDropped):
            sub.wait_changes(5, timeout=0.5)
        with pytest.raises(TargetUnreachable):
            c.sql("SELECT 1")
        proc.restart()
        assert proc.alive and proc.pid != old_pid and proc.url == url
        assert c.query_all(f"SELECT id, body FROM {ns}.t", "id").rows == (
            (1, "hot"),
            (2, "cold"),
            (3, "hot again"),
        )
        c.sql(f"INSERT INTO {ns}.t (id, body) VALUES (4, 'after restart')")
        resumed = sub.resume()
        assert [r["id"] for r in resumed.snapshot_rows] == [4]
        assert sorted(r["id"] for r in resumed.current_rows()) == [1, 2, 3, 4]
        live.close()


def test_graceful_stop_and_restart(proc: ServerProcess) -> None:
    code = proc.stop(timeout=20)
    assert code is not None and not proc.alive
    proc.restart()
    with proc.client() as c:
        assert c.sql("SELECT 1 AS one").scalar() == 1


def test_first_run_setup_when_root_has_no_password() -> None:
    if Target.parse().kind != "sim":
        pytest.skip("runs the sim only")
    with ServerProcess(env={"KALAMDB_ROOT_PASSWORD": ""}) as p:
        probe = SqlClient(p.url, "root", p.root_password, login=False)
        assert probe.auth_status()["needs_setup"] is True
        with SqlClient(p.url, "root", p.root_password) as c:  # 428 → setup → login
            assert c.role == "system"
            users = {u.user_id: u.role for u in c.users()}
            assert users.get("kalamfuzz_admin") == "dba"
        assert probe.auth_status()["needs_setup"] is False
        probe.close()


def test_close_leaves_no_process_and_removes_workdir() -> None:
    if Target.parse().kind != "sim":
        pytest.skip("runs the sim only")
    p = ServerProcess().start()
    pid, workdir = p.pid, p.workdir
    assert pid is not None
    p.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not workdir.exists()


def test_sim_target_lifecycle() -> None:
    if Target.parse().kind != "sim":
        pytest.skip("runs the sim only")
    with Target.parse("sim", env={}) as t:
        assert t.process is not None and t.skip_reason("kill") is None
        with t.client() as c, t.live(c) as live:
            assert live.connected and c.sql("SELECT 1 AS x").scalar() == 1
        t.kill()
        t.restart()
        with t.client() as c:
            assert c.health()["status"] == "healthy"
    assert t.process is None


# --- the sim launcher: a start is a fork of a process that has imported the sim -------------


def _sim_only() -> None:
    if Target.parse().kind != "sim":
        pytest.skip("runs the sim only")


def test_a_forked_sim_reports_its_exit_like_popen() -> None:
    _sim_only()
    with ServerProcess() as p:
        assert isinstance(p._proc, launcher.Forked)
        p.kill()
        assert p.returncode == -signal.SIGKILL and not p.alive
        p.restart()
        assert p.stop(timeout=20) == 0  # SIGINT is a graceful stop, as for kalamdb-server


def test_forked_sims_die_with_their_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    _sim_only()
    # A launcher of this test's own: the process's launcher forked the session's server too.
    monkeypatch.setattr(launcher, "_current", None)
    with ServerProcess() as p:
        pid = p.pid
        assert isinstance(p._proc, launcher.Forked) and pid is not None
        p._proc._launcher.proc.kill()  # the client went away
        deadline = time.monotonic() + 10
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the sim outlived its launcher"
            time.sleep(0.05)
        p._proc.wait(5)
        assert not p.alive
        p.start()  # a new launcher
        with p.client() as c:
            assert c.sql("SELECT 1 AS one").scalar() == 1
    ours = launcher._current
    assert ours is not None and ours.proc.stdin is not None
    ours.proc.stdin.close()  # as when this process ends: the launcher ends
    assert ours.proc.wait(10) == 0


def test_without_a_launcher_the_sim_starts_as_its_own_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _sim_only()
    monkeypatch.setattr(launcher, "spawn", lambda *_: "cannot start the sim launcher: test")
    with ServerProcess() as p:
        assert isinstance(p._proc, subprocess.Popen)
        assert "cannot start the sim launcher: test" in p.log_tail()
        with p.client() as c:
            assert c.sql("SELECT 1 AS one").scalar() == 1
