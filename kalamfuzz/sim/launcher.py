"""`python -m kalamfuzz.sim.launcher`: starts sim servers by forking a process that has already
imported the sim, so that a server (re)start costs a fork instead of a Python start-up.

Importing the sim (aiohttp, sqlglot, pyarrow) takes about a second of CPU, and a campaign
restarts its server after every crash rule: the no-bug smoke run spent 15% of its time, a crash
hunt over half of it, waiting for new sim processes to import. A forked server is the same
program as ``python -m kalamfuzz.sim CONFIG``: its own process and session, its own working
directory, environment and log, killed by SIGKILL like any other.

The protocol is JSON lines. On stdin: ``{"argv": [...], "cwd": ..., "env": {...}, "log": ...}``;
on stdout: ``{"pid": N}`` (or ``{"error": ...}``) for each request in order, and ``{"exit": N,
"code": C}`` when server N has ended (C as ``Popen.returncode``: -9 after SIGKILL). The launcher
ends, killing its servers, when its stdin closes: its client has gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import traceback
from typing import Any

# Imported here, before any fork, so that no server imports it again.
from kalamfuzz.sim import cli, server  # noqa: F401

_PR_SET_PDEATHSIG = 1


def _say(message: dict[str, Any]) -> None:
    # One write per line: whole lines from the reaper and the main loop never interleave.
    os.write(1, (json.dumps(message) + "\n").encode())


def _reap(_signum: int = 0, _frame: object = None) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _say({"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _serve(request: dict[str, Any]) -> None:
    """In the forked child: become the server the request describes; never returns."""
    code = 1
    try:
        os.setsid()
        _die_with_parent()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, 1024)
        os.environ.clear()
        os.environ.update(request["env"])
        code = cli.main(list(request["argv"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        code = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    os._exit(code if code >= 0 else 128 - code)


def _die_with_parent() -> None:
    """SIGKILL when the launcher dies, as a server started by Popen dies with its client."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        ctypes.CDLL(name, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # its client stops it by closing stdin
    signal.signal(signal.SIGCHLD, _reap)
    children: set[int] = set()
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                pid = os.fork()
            except (OSError, ValueError) as exc:
                _say({"error": str(exc)})
                continue
            if pid == 0:
                _serve(request)
            children.add(pid)
            _say({"pid": pid})
    finally:
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
