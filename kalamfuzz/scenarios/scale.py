"""Sizes: ``full`` is the seed text's numbers; ``smoke`` shrinks them so that the whole suite
runs in CI in under three minutes on the sim."""

from __future__ import annotations

from attrs import frozen


@frozen
class Scale:
    name: str
    #: Users of the parallel scenarios (the seed: 10).
    users: int
    #: Offline sync: items per user, then the drift (inserted, updated, deleted).
    sync_items: int
    sync_drift: tuple[int, int, int]
    #: Shopping cart: items per cart, updates, deletes.
    cart: tuple[int, int, int]
    #: STREAM TTLs of the scenarios, in seconds (chat typing, shop notifications, presence).
    notification_ttl: int
    presence_ttl: int
    #: IoT rows, and the burst's inserts.
    iot_rows: int
    burst_rows: int
    #: The performance trend's table sizes.
    trend_sizes: tuple[int, ...]
    #: Soak length in seconds.
    soak_s: float
    #: Live-query story: messages of tests 1 and 10, writers x messages of test 4.
    live_messages: int
    live_high_frequency: int
    live_writers: tuple[int, int]
    #: Stress story: writers, rows per writer, listeners, seconds of sustained load, the
    #: insert rate of the CPU test (rows/s) and how long it is held, subscriptions of the
    #: leak test, seconds allowed for memory to come back.
    stress_writers: int
    stress_rows: int
    stress_listeners: int
    stress_s: float
    stress_rate: int
    stress_rate_s: float
    #: Rows/s of the long mixed loads (writers with listeners, readers under load): paced so
    #: that five minutes of checked steps stay within what the model holds (0: unpaced).
    sustained_rate: int
    stress_subscriptions: int
    release_s: float
    #: Whether the seed's resource thresholds are judged (full) or only measured (smoke: runs
    #: too short for a trend, on shared CI machines).
    judge_resources: bool


SMOKE = Scale(
    name="smoke",
    users=3,
    sync_items=120,
    sync_drift=(20, 10, 5),
    cart=(20, 8, 3),
    notification_ttl=2,
    presence_ttl=2,
    iot_rows=500,
    burst_rows=200,
    trend_sizes=(100, 1000),
    soak_s=3.0,
    live_messages=30,
    live_high_frequency=200,
    live_writers=(5, 4),
    stress_writers=3,
    stress_rows=300,
    stress_listeners=4,
    stress_s=2.0,
    stress_rate=200,
    stress_rate_s=2.0,
    sustained_rate=0,
    stress_subscriptions=10,
    release_s=1.0,
    judge_resources=False,
)

FULL = Scale(
    name="full",
    users=10,
    sync_items=1200,
    sync_drift=(200, 100, 50),
    cart=(50, 20, 5),
    notification_ttl=60,
    presence_ttl=5,
    iot_rows=5000,
    burst_rows=1000,
    trend_sizes=(100, 5000, 50000),
    soak_s=60.0,
    live_messages=100,
    live_high_frequency=1000,
    live_writers=(5, 20),
    stress_writers=10,
    stress_rows=10000,
    stress_listeners=20,
    stress_s=300.0,
    stress_rate=1000,
    stress_rate_s=30.0,
    sustained_rate=200,
    stress_subscriptions=50,
    release_s=60.0,
    judge_resources=True,
)

SCALES = {s.name: s for s in (SMOKE, FULL)}
