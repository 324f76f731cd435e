"""The shared base of every machine: one driver, a fresh example per run, a sweep at the end.

A machine holds no wire details: its rules draw values (before any I/O, as Hypothesis needs)
and call the driver, which observes, checks and updates the model. Domain machines add rules by
subclassing; the combined machine inherits all of them. ``@machine("name")`` registers one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

from hypothesis.stateful import RuleBasedStateMachine

from kalamfuzz.errors import ConfigError
from kalamfuzz.machines.driver import Driver
from kalamfuzz.machines.world import TABLES
from kalamfuzz.model.catalog import Table

M = TypeVar("M", bound="type[KalamMachine]")

#: Every registered machine by name, in registration order.
MACHINES: dict[str, type[KalamMachine]] = {}
#: The machines ``--machine all`` runs, in this order: every domain, then all of them at once.
ALL_MACHINES = (
    "data",
    "flush",
    "live",
    "ddl",
    "rbac",
    "routing",
    "jobs",
    "ttl",
    "concurrency",
    "combined",
)


def machine(name: str) -> Callable[[M], M]:
    def register(cls: M) -> M:
        cls.name = name
        MACHINES[name] = cls
        return cls

    return register


def get_machine(name: str) -> type[KalamMachine]:
    try:
        return MACHINES[name]
    except KeyError:
        raise ConfigError(
            f"no machine named {name!r}", hint="use one of: " + ", ".join(MACHINES)
        ) from None


class KalamMachine(RuleBasedStateMachine):
    """Base of the kalamfuzz machines; construct with the campaign's :class:`Driver`."""

    name: ClassVar[str] = "base"
    #: The world tables this machine's examples start with.
    TABLES: ClassVar[tuple[str, ...]] = tuple(TABLES)

    def __init__(self, driver: Driver) -> None:
        super().__init__()
        self.d = driver
        driver.begin(self.TABLES)

    def table(self, name: str) -> Table:
        """The table's current definition (schema changes included) as the model knows it."""
        table = self.d.model.table(self.d.table_id(name))
        if table is None:
            raise ConfigError(f"table {name!r} is not in this example")
        return table

    def may_sleep(self) -> bool:
        """Whether rules that sleep (a crash restart, a TTL pause: a second each) may run in
        this example; the combined machine allows them in some examples only."""
        return True

    def live_tables(self) -> list[str]:
        """World tables of this example that still exist."""
        return [t for t in self.TABLES if self.d.model.table(self.d.table_id(t)) is not None]

    def teardown(self) -> None:
        # After a failure the example is over: a sweep would only report the same fault again.
        if not self.d.failed:
            self.d.sweep()
