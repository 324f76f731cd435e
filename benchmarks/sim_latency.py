"""Median loopback latency of an INSERT and a SELECT against kalamfuzz.sim, and its RSS after N rows.

    python benchmarks/sim_latency.py [--rows 50000] [--runs 5]

Prints one line per run and the medians. Machines here are noisy: compare medians, not single runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

PASSWORD = "bench-Root-pw-1"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_run(rows: int, samples: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        port = _port()
        cfg = Path(tmp) / "server.toml"
        cfg.write_text(
            f'[server]\nhost = "127.0.0.1"\nport = {port}\n[storage]\ndata_path = "{tmp}/data"\n'
            f'[logging]\nlogs_path = "{tmp}/logs"\nlevel = "warning"\n[rate_limit]\nmax_queries_per_sec = 1000000\n'
        )
        proc = subprocess.Popen([sys.executable, "-m", "kalamfuzz.sim", str(cfg)],
                                env={**os.environ, "KALAMDB_ROOT_PASSWORD": PASSWORD},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
            for _ in range(300):
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            token = http.post("/v1/api/auth/login", json={"user": "root", "password": PASSWORD}).json()["access_token"]
            h = {"Authorization": f"Bearer {token}"}

            def sql(text: str) -> None:
                r = http.post("/v1/api/sql", json={"sql": text}, headers=h)
                assert r.status_code == 200, r.text

            sql("CREATE NAMESPACE b")
            sql("CREATE TABLE b.t (id BIGINT PRIMARY KEY, body TEXT, n INT) WITH (TYPE='USER')")
            inserts, selects = [], []
            for i in range(samples):
                t0 = time.perf_counter()
                sql(f"INSERT INTO b.t (id, body, n) VALUES ({i}, 'row {i}', {i % 97})")
                inserts.append(time.perf_counter() - t0)
            for i in range(samples):
                t0 = time.perf_counter()
                sql(f"SELECT id, body FROM b.t WHERE n = {i % 97} ORDER BY id LIMIT 10")
                selects.append(time.perf_counter() - t0)
            batch = 1000
            for start in range(samples, rows, batch):
                values = ", ".join(f"({i}, 'row {i}', {i % 97})" for i in range(start, min(rows, start + batch)))
                sql(f"INSERT INTO b.t (id, body, n) VALUES {values}")
            sql("SELECT COUNT(*) FROM b.t")
            rss = psutil.Process(proc.pid).memory_info().rss / 2**20
            return statistics.median(inserts) * 1000, statistics.median(selects) * 1000, rss
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    results = []
    for run in range(args.runs):
        ins, sel, rss = one_run(args.rows, args.samples)
        results.append((ins, sel, rss))
        print(f"run {run + 1}: insert {ins:.2f} ms  select {sel:.2f} ms  rss after {args.rows} rows {rss:.0f} MiB")
    print(
        f"median of {args.runs}: insert {statistics.median(r[0] for r in results):.2f} ms, "
        f"select {statistics.median(r[1] for r in results):.2f} ms, "
        f"rss {statistics.median(r[2] for r in results):.0f} MiB"
    )


if __name__ == "__main__":
    main()
