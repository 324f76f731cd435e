"""A loopback TCP proxy between kalamfuzz's HTTP clients and the server, for network faults.

Every SQL request of a driver goes through it; :meth:`FaultProxy.arm` makes the next request
meet one fault:

``reset_request``
    half of the request reaches the server, then both connections are reset: the statement
    never ran, but the client cannot know.
``reset_response``
    the whole request reaches the server, which runs it; its reply is dropped and the client's
    connection reset: the statement ran, but the client cannot know.
``stall``
    the reply is held back for :data:`STALL_S` before it is passed on.

It knows nothing of HTTP beyond "a request is what the client sends before the reply starts",
so it works in front of any target, a url one included.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Literal
from urllib.parse import urlsplit

from kalamfuzz.errors import ConfigError

__all__ = ["FAULTS", "STALL_S", "Fault", "FaultProxy"]

Fault = Literal["reset_request", "reset_response", "stall"]
FAULTS: tuple[Fault, ...] = ("reset_response", "reset_request", "stall")
#: How long a stalled reply is held back (below any client timeout: a stall is slow, not lost).
STALL_S = 0.1
_CHUNK = 65536


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN (SO_LINGER 0): the peer sees 'connection reset'."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close(sock, socket.SHUT_RD)


def _close(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    # A close alone does not wake the other pump thread blocked in recv() on the socket, and
    # the kernel keeps the connection open until that call returns: shut it down first.
    with contextlib.suppress(OSError):
        sock.shutdown(how)
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One client connection and its upstream connection, pumped by two threads."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        #: The fault of the request now in flight on this connection.
        self.fault: Fault | None = None
        self.closed = False

    def start(self) -> None:
        for src, dst, fault_at in (
            (self.client, self.upstream, self._request),
            (self.upstream, self.client, self._reply),
        ):
            threading.Thread(
                target=self._pump, args=(src, dst, fault_at), name="kalamfuzz-proxy", daemon=True
            ).start()

    def close(self, *, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for s in (self.client, self.upstream):
            if reset:
                _reset(s)
            else:
                _close(s)

    def _pump(
        self, src: socket.socket, dst: socket.socket, fault_at: Callable[[bytes], bytes | None]
    ) -> None:
        """Copy ``src`` to ``dst`` chunk by chunk; ``fault_at`` may change a chunk, or return
        None once it has reset the link."""
        while not self.closed:
            try:
                chunk = src.recv(_CHUNK)
            except OSError:
                break
            if not chunk:
                break
            out = fault_at(chunk)
            if out is None:
                return
            try:
                dst.sendall(out)
            except OSError:
                break
        self.close()

    def _request(self, chunk: bytes) -> bytes | None:
        if self.fault is None:
            self.fault = self.proxy.disarm()  # the request in flight takes the armed fault
        if self.fault == "reset_request":
            with contextlib.suppress(OSError):
                self.upstream.sendall(chunk[: max(1, len(chunk) // 2)])
            self.close(reset=True)
            return None
        return chunk

    def _reply(self, chunk: bytes) -> bytes | None:
        fault, self.fault = self.fault, None
        if fault == "reset_response":
            self.close(reset=True)
            return None
        if fault == "stall":
            time.sleep(STALL_S)
        return chunk


class FaultProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigError(
                f"cannot proxy {upstream!r}",
                hint="network faults need a plain http://HOST:PORT target",
            )
        self._upstream = (parts.hostname, parts.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._armed: Fault | None = None
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._closed = False
        threading.Thread(target=self._accept, name="kalamfuzz-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def arm(self, fault: Fault) -> None:
        """The next request (on any connection) meets ``fault``."""
        if fault not in FAULTS:
            raise ConfigError(f"unknown network fault {fault!r}", hint=f"use one of {FAULTS}")
        with self._lock:
            self._armed = fault

    def disarm(self) -> Fault | None:
        """Take the armed fault back (None if a request took it first)."""
        with self._lock:
            fault, self._armed = self._armed, None
        return fault

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._upstream, timeout=5.0)
                upstream.settimeout(None)
            except OSError:
                _reset(client)  # the server is down: the client sees its connection refused
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, upstream)
            with self._lock:
                self._links = [x for x in self._links if not x.closed] + [link]
            link.start()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
