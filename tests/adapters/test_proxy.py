"""The fault proxy: what reaches the server and what the client sees, for each network fault."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from kalamfuzz.adapters.proxy import STALL_S, FaultProxy
from kalamfuzz.errors import ConfigError

REQUEST = b"POST /v1/api/sql HTTP/1.1\r\nContent-Length: 4\r\n\r\nping"
REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong"


class Upstream:
    """A server that answers every whole request with REPLY and keeps what it received."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.received: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        got = b""
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                got += chunk
                if got.endswith(b"ping"):
                    self.received.append(got)
                    got = b""
                    conn.sendall(REPLY)
            if got:
                self.received.append(got)


@pytest.fixture
def proxy() -> Iterator[tuple[FaultProxy, Upstream]]:
    upstream = Upstream()
    with FaultProxy(upstream.url) as p:
        yield p, upstream
    upstream.listener.close()


def exchange(p: FaultProxy) -> bytes:
    host, port = p.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as c:
        c.sendall(REQUEST)
        return c.recv(65536)


def settle(up: Upstream, n: int) -> None:
    deadline = time.monotonic() + 2
    while len(up.received) < n and time.monotonic() < deadline:
        time.sleep(0.01)


def test_without_a_fault_bytes_pass_both_ways(proxy: tuple[FaultProxy, Upstream]) -> None:
    p, up = proxy
    assert exchange(p) == REPLY
    assert up.received == [REQUEST]


def test_a_reset_response_runs_the_request_and_loses_the_reply(
    proxy: tuple[FaultProxy, Upstream],
) -> None:
    p, up = proxy
    p.arm("reset_response")
    with pytest.raises(ConnectionResetError):
        exchange(p)
    settle(up, 1)
    assert up.received == [REQUEST]  # the server got all of it (and answered)
    assert exchange(p) == REPLY  # one request only


def test_a_reset_request_never_delivers_a_whole_request(
    proxy: tuple[FaultProxy, Upstream],
) -> None:
    p, up = proxy
    p.arm("reset_request")
    with pytest.raises(ConnectionResetError):
        exchange(p)
    settle(up, 1)
    assert len(up.received) == 1 and REQUEST.startswith(up.received[0])
    assert up.received[0] != REQUEST


def test_a_stall_holds_the_reply_back(proxy: tuple[FaultProxy, Upstream]) -> None:
    p, _ = proxy
    p.arm("stall")
    started = time.monotonic()
    assert exchange(p) == REPLY
    assert time.monotonic() - started >= STALL_S


def test_a_fault_no_request_took_can_be_taken_back(proxy: tuple[FaultProxy, Upstream]) -> None:
    p, _ = proxy
    p.arm("reset_response")
    assert p.disarm() == "reset_response"
    assert exchange(p) == REPLY


def test_bad_arguments_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="plain http://HOST:PORT"):
        FaultProxy("https://example.org")
    with FaultProxy("http://127.0.0.1:9") as p, pytest.raises(ConfigError, match="use one of"):
        p.arm("explode")  # type: ignore[arg-type]
