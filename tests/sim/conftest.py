"""Launch real sim processes for conformance tests, talking to them with plain httpx and websockets.

Deliberately independent of kalamfuzz.adapters: these tests pin the wire protocol itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

ROOT_PASSWORD = "kalamsim-Root-pw-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sim:
    """One sim process on a free port with its own data directory."""

    def __init__(
        self,
        workdir: Path,
        bugs: tuple[str, ...] = (),
        extra: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.data = workdir / "data"
        self.config = workdir / "server.toml"
        self.config.write_text(
            f'[server]\nhost = "127.0.0.1"\nport = {self.port}\n'
            f'[storage]\ndata_path = "{self.data}"\n'
            f'[logging]\nlogs_path = "{workdir / "logs"}"\nlevel = "warning"\n'
            "[auth]\nbcrypt_cost = 4\n"
            "[rate_limit]\nmax_queries_per_sec = 100000\nmax_messages_per_sec = 100000\n"
            "max_subscriptions_per_user = 1000\nmax_auth_requests_per_ip_per_sec = 10000\n"
            f"[sim]\nbugs = {json.dumps(list(bugs))}\n" + extra
        )
        self.env = {**os.environ, "KALAMDB_ROOT_PASSWORD": ROOT_PASSWORD, **(env or {})}
        self.env.pop("KALAMSIM_BUGS", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/v1/ws"
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self._tokens: dict[str, str] = {}

    def start(self) -> Sim:
        log = open(self.workdir / "sim.out", "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kalamfuzz.sim", str(self.config)],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sim exited: {(self.workdir / 'sim.out').read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get("/health").status_code == 200:
                    self._tokens.clear()
                    return self
            time.sleep(0.05)
        raise RuntimeError("sim did not become healthy in 30 s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        return self.proc.returncode

    def token(self, user: str = "root", password: str = ROOT_PASSWORD) -> str:
        if user not in self._tokens:
            r = self.http.post("/v1/api/auth/login", json={"user": user, "password": password})
            assert r.status_code == 200, r.text
            self._tokens[user] = r.json()["access_token"]
        return self._tokens[user]

    def sql_response(
        self, sql: str, user: str = "root", password: str = ROOT_PASSWORD, **body: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(user, password)}"}
        return self.http.post("/v1/api/sql", json={"sql": sql, **body}, headers=headers)

    def sql(
        self, sql: str, user: str = "root", password: str = ROOT_PASSWORD, **body: Any
    ) -> list[dict[str, Any]]:
        r = self.sql_response(sql, user, password, **body)
        assert r.status_code == 200, f"{sql!r} -> {r.status_code} {r.text}"
        results: list[dict[str, Any]] = r.json()["results"]
        return results

    def rows(
        self, sql: str, user: str = "root", password: str = ROOT_PASSWORD, **body: Any
    ) -> list[list[Any]]:
        rows: list[list[Any]] = self.sql(sql, user, password, **body)[0]["rows"]
        return rows

    def error(
        self, sql: str, user: str = "root", password: str = ROOT_PASSWORD, **body: Any
    ) -> tuple[int, dict[str, Any]]:
        r = self.sql_response(sql, user, password, **body)
        assert r.json()["status"] == "error", r.text
        return r.status_code, r.json()["error"]

    def create_user(self, name: str, role: str = "user", password: str = "pw-for-tests-1") -> None:
        self.sql(f"CREATE USER {name} WITH PASSWORD '{password}' ROLE {role}")

    def wait_job(self, job_id: str, timeout: float = 20) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.rows(f"SELECT status, message FROM system.jobs WHERE job_id = '{job_id}'")
            if rows and rows[0][0] in ("completed", "failed", "skipped", "cancelled"):
                return rows[0]
            time.sleep(0.02)
        raise AssertionError(f"job {job_id} did not finish")

    def flush(self, table: str) -> list[Any]:
        message = self.sql(f"STORAGE FLUSH TABLE {table}")[0]["message"]
        assert "Job ID: " in message, message
        return self.wait_job(message.split("Job ID: ")[1].strip())

    def close(self) -> None:
        self.http.close()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Live:
    """A raw /v1/ws connection: header auth, compress=false, messages as dicts."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(raw, bytes):
            import gzip

            raw = gzip.decompress(raw).decode()
        message: dict[str, Any] = json.loads(raw)
        return message

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def quiet(self, timeout: float = 0.3) -> list[dict[str, Any]]:
        """Everything that arrives until nothing has for `timeout` seconds."""
        out = []
        while True:
            try:
                out.append(await self.recv(timeout))
            except TimeoutError:
                return out

    async def subscribe(self, sub_id: str, sql: str, **options: Any) -> list[dict[str, Any]]:
        """Subscribe and page through the whole snapshot; returns ack + every batch."""
        await self.send(
            {"type": "subscribe", "subscription": {"id": sub_id, "sql": sql, "options": options}}
        )
        messages = [await self.recv()]
        if messages[0]["type"] != "subscription_ack":
            return messages
        while True:
            batch = await self.recv()
            messages.append(batch)
            assert batch["type"] == "initial_data_batch", batch
            if not batch["batch_control"]["has_more"]:
                return messages
            await self.send(
                {
                    "type": "next_batch",
                    "subscription_id": sub_id,
                    "last_seq_id": batch["batch_control"]["last_seq_id"],
                }
            )


@contextlib.asynccontextmanager
async def live(
    sim: Sim, user: str = "root", password: str = ROOT_PASSWORD, compress: bool = False
) -> Any:
    url = sim.ws_url + ("" if compress else "?compress=false")
    headers = {"Authorization": f"Bearer {sim.token(user, password)}"}
    async with websockets.connect(url, additional_headers=headers, ping_interval=3) as ws:
        conn = Live(ws)
        hello = await conn.recv()
        assert hello["type"] == "auth_success", hello
        yield conn


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """One shared plain sim (no bugs); tests isolate themselves in their own namespaces."""
    s = Sim(tmp_path_factory.mktemp("sim")).start()
    yield s
    s.close()


@pytest.fixture
def fresh_sim(tmp_path: Path) -> Iterator[Sim]:
    s = Sim(tmp_path)
    yield s
    s.close()


_counter = iter(range(10**6))


@pytest.fixture
def ns(sim: Sim) -> str:
    name = f"ns{next(_counter)}_{os.getpid()}"
    sim.sql(f"CREATE NAMESPACE {name}")
    return name
