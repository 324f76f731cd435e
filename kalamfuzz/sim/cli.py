"""Command line of the embedded target (also reached as `kalamfuzz sim`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
from pathlib import Path

from aiohttp import web

from .bugs import describe_bugs
from .config import ConfigError, load_config


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kalamfuzz sim", description="Run the embedded KalamDB-compatible target."
    )
    parser.add_argument(
        "config", nargs="?", help="server.toml (kalamdb-server's keys); default ./server.toml"
    )
    parser.add_argument("--list-bugs", action="store_true", help="print the planted bugs and exit")
    args = parser.parse_args(argv)
    if args.list_bugs:
        print(describe_bugs())
        return 0
    path = Path(args.config) if args.config else Path("server.toml")
    if args.config is None and not path.exists():
        print(
            "kalamfuzz sim: no config file: pass CONFIG.toml (see kalamdb-server's server.toml keys)",
            file=sys.stderr,
        )
        return 2
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"kalamfuzz sim: {exc}", file=sys.stderr)
        return 2
    config.logs_path.mkdir(parents=True, exist_ok=True)
    level = getattr(logging, config.log_level.upper(), logging.INFO)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[
            logging.StreamHandler(sys.stderr),
            logging.FileHandler(config.logs_path / "server.log"),
        ],
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    sock = socket.socket(
        socket.AF_INET6 if ":" in config.host else socket.AF_INET, socket.SOCK_STREAM
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as exc:
        print(
            f"kalamfuzz sim: cannot bind {config.host}:{config.port} ({exc.strerror}): choose a free [server] port",
            file=sys.stderr,
        )
        return 1
    from .server import build_app

    try:
        app = build_app(config)
    except Exception as exc:
        print(
            f"kalamfuzz sim: cannot open data directory {config.data_path}: {exc}", file=sys.stderr
        )
        return 1
    host, port = sock.getsockname()[:2]
    bugs = ", ".join(sorted(config.bugs)) or "none"
    print(
        f"kalamfuzz.sim listening on http://{host}:{port} (data {config.data_path}, planted bugs: {bugs})",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        web.run_app(app, sock=sock, print=None, handle_signals=True, shutdown_timeout=30)
    return 0
