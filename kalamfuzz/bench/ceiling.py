"""The ceiling: the operations a campaign sent, sent again by a plain client loop (no generation,
no model, no checks) to a fresh target with the same users and storages. What the target allows
for that very mix of statements, against which the fuzzer's rate is a ratio."""

from __future__ import annotations

import time
from collections.abc import Sequence

from attrs import frozen

from kalamfuzz.adapters.target import Target
from kalamfuzz.bench.measure import Operation
from kalamfuzz.errors import KalamError
from kalamfuzz.machines.driver import Driver


@frozen
class Ceiling:
    operations: int
    seconds: float
    #: Statements the server refused (as many as it refused the fuzzer: the same mix).
    errors: int

    @property
    def per_s(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0


def replay(
    operations: Sequence[Operation],
    tag: str,
    target: str,
    sim_config: dict[str, dict[str, object]] | None = None,
) -> Ceiling:
    """Send ``operations`` (recorded by a driver with tag ``tag``: the same users and storages
    are made again under the same names) one after another and time it.

    Planted bugs stay off: the ceiling is the plain target's."""
    with Target.parse(target, config=sim_config) as t:
        driver = Driver(t, tag=tag)
        try:
            driver.setup_world()
            plan = [(driver.client(op.actor), op.sql) for op in operations]
            errors = 0
            started = time.perf_counter()
            for client, sql in plan:
                try:
                    client.sql(sql)
                except KalamError:
                    errors += 1
            seconds = time.perf_counter() - started
        finally:
            driver.close()
    return Ceiling(len(plan), seconds, errors)
