"""Load for the scenarios: rounds of writes sent at once, paced or not, and a warm baseline of
the server's memory."""

from __future__ import annotations

import time

from attrs import define

from kalamfuzz.machines.driver.workload import Write
from kalamfuzz.model.catalog import TableType
from kalamfuzz.scenarios.run import Run
from kalamfuzz.scenarios.shapes import SIMPLE, simple

#: Rows each writer sends per round.
BATCH = 50


@define
class Load:
    rounds: int = 0
    rows: int = 0
    seconds: float = 0.0
    #: Epoch seconds and ms at the start of the load.
    started: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def warm_baseline(r: Run) -> float | None:
    """The server's RSS once warm: the same kinds of request as the load (writes, reads, a
    flush, a subscription) on a scratch table first, so that what a server allocates once
    (caches, lazily loaded code) is not counted as growth."""
    users = r.users(1)
    r.d.create_table("root", "warm_up", TableType.USER, columns=SIMPLE)
    r.d.subscribe(users[0], "warm-up", "warm_up")
    load(r, users, rows=2 * BATCH, table="warm_up", reads=True)
    r.d.flush("root", "warm_up", wait=True)
    r.d.unsubscribe("warm-up")
    r.d.drop_table("root", "warm_up")
    base = r.rss_mb()
    if base is not None:
        r.measures["rss_baseline_mb"] = round(base, 2)
    return base


def load(
    r: Run,
    users: list[str],
    *,
    rows: int | None = None,
    seconds: float | None = None,
    rate: float | None = None,
    flush_every: int = 0,
    reads: bool = False,
    batch: int = BATCH,
    table: str = "stress",
    first_key: int = 1,
    body: str | None = None,
) -> Load:
    """Rounds of one INSERT of ``batch`` rows per writer, at once, until each wrote ``rows`` or
    ``seconds`` passed; ``rate``: rows per second in all, paced; ``flush_every``: a flush
    every so many rounds; ``reads``: a reader's SELECT every round; ``body``: each row's text
    (default ``row N``)."""
    load = Load(started=time.time())
    start = time.monotonic()
    key = first_key
    while True:
        if rows is not None and key - first_key >= rows:
            break
        if seconds is not None and time.monotonic() - start >= seconds:
            break
        size = batch if rows is None else min(batch, rows - (key - first_key))
        ids = range(key, key + size)
        r.d.parallel(
            [Write(u, table, [simple(i, grp=i % 5, body=body) for i in ids]) for u in users]
        )
        key += len(ids)
        load.rounds += 1
        load.rows += len(ids) * len(users)
        if flush_every and load.rounds % flush_every == 0:
            r.d.flush("root", table)
        if reads:
            u = users[load.rounds % len(users)]
            r.d.select(u, table, order_by=[("id", True)], limit=20)
        if rate:
            ahead = load.rows / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    load.seconds = time.monotonic() - start
    r.measures |= {"rows": load.rows, "rounds": load.rounds, "rows_per_s": round(load.rate, 1)}
    return load
