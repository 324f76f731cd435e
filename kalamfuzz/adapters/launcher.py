"""Sim servers forked by a launcher process (:mod:`kalamfuzz.sim.launcher`) instead of started
with ``python -m kalamfuzz.sim``: the same server, without a second of imports at every start.

One launcher per client process, started on first use and again if it died; a started server is
a :class:`Forked` handle with the part of ``subprocess.Popen`` that
:class:`~kalamfuzz.adapters.process.ServerProcess` uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

__all__ = ["Forked", "spawn"]


#: How long a fork may take to be confirmed, its first import of the sim included.
REPLY_S = 60.0


class Forked:
    """A server the launcher forked; its exit code comes from the launcher, which reaps it."""

    def __init__(self, launcher: _Launcher, pid: int, args: Sequence[str]) -> None:
        self._launcher = launcher
        self.pid = pid
        self.args = list(args)

    @property
    def returncode(self) -> int | None:
        return self._launcher.exit_code(self.pid)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self._launcher.wait_exit(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:  # once reaped, the pid may be another process's
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Launcher:
    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KALAMDB_", "KALAMSIM_"))}
        self.owner = os.getpid()
        # No PR_SET_PDEATHSIG here: it would fire when the thread that started the launcher
        # ends, not the process. The launcher ends when its stdin closes, with this process.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kalamfuzz.sim.launcher"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self._replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self._exits: dict[int, int] = {}
        self._ended = threading.Condition()
        self._request = threading.Lock()
        self.alive = True
        self.stuck = False
        assert self.proc.stdout is not None
        threading.Thread(
            target=self._read, args=(self.proc.stdout,), name="sim-launcher", daemon=True
        ).start()

    def _read(self, out: IO[bytes]) -> None:
        for line in out:
            try:
                message = json.loads(line)
            except ValueError:
                continue  # not the launcher's (a module that prints on import)
            if "exit" in message:
                with self._ended:
                    self._exits[message["exit"]] = message["code"]
                    self._ended.notify_all()
            else:
                self._replies.put(message)
        # The launcher is gone, and its servers with it (they die with their parent).
        with self._ended:
            self.alive = False
            self._ended.notify_all()
        self._replies.put({"error": f"the sim launcher exited (code {self.proc.wait()})"})

    def spawn(
        self, argv: Sequence[str], cwd: str, env: Mapping[str, str], log: str
    ) -> Forked | str:
        """A forked server, or why the launcher could not fork one."""
        request = {"argv": list(argv), "cwd": cwd, "env": dict(env), "log": log}
        with self._request:
            if not self.alive:
                return "the sim launcher is not running"
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write((json.dumps(request) + "\n").encode())
                self.proc.stdin.flush()
            except OSError as exc:
                return f"cannot reach the sim launcher: {exc}"
            try:
                reply = self._replies.get(timeout=REPLY_S)
            except queue.Empty:
                self.stuck = True  # the next start gets a new launcher; its servers live on
                return f"the sim launcher did not answer within {REPLY_S:.0f} s"
        if "pid" not in reply:
            return str(reply.get("error", reply))
        return Forked(self, int(reply["pid"]), ["kalamfuzz.sim", *argv])

    def exit_code(self, pid: int) -> int | None:
        with self._ended:
            return self._exit_code(pid)

    def _exit_code(self, pid: int) -> int | None:
        code = self._exits.get(pid)
        if code is None and not self.alive:
            return -int(signal.SIGKILL)
        return code

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ended:
            while (code := self._exit_code(pid)) is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._ended.wait(left)
            return code


_current: _Launcher | None = None
_lock = threading.Lock()


def spawn(argv: Sequence[str], cwd: str, env: Mapping[str, str], log: str) -> Forked | str:
    """Fork a sim server running ``python -m kalamfuzz.sim ARGV``, its output appended to
    ``log``; or say why not (the caller then starts it the slow way)."""
    global _current
    with _lock:
        # A forked client (a multiprocessing worker) must not share its parent's launcher.
        current = _current
        if current is None or not current.alive or current.stuck or current.owner != os.getpid():
            try:
                current = _current = _Launcher()
            except OSError as exc:
                return f"cannot start the sim launcher: {exc}"
    return current.spawn(argv, cwd, env, log)
