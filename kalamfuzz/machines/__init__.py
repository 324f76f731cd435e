"""Hypothesis state machines that drive a target and the reference model together.

``MACHINES`` maps a name to its machine class; every machine takes the campaign's
:class:`Driver`. The driver is also the API regression files are written in::

    with Driver.open() as d:            # $KALAMFUZZ_TARGET, default: the sim
        d.begin(("notes",))
        d.insert("alice", "notes", [{"id": 1, "n": None, "s": "a", "b": None}])
        d.sweep()                        # raises InvariantViolation if the contract broke
"""

from kalamfuzz.machines import (
    combined,
    concurrency,
    data,
    ddl,
    flush,
    hostile,
    jobs,
    live,
    rbac,
    routing,
    ttl,
)
from kalamfuzz.machines.base import MACHINES, KalamMachine, get_machine, machine
from kalamfuzz.machines.driver import Driver, Exchange, InvariantViolation, StepStats

__all__ = [
    "MACHINES",
    "Driver",
    "Exchange",
    "InvariantViolation",
    "KalamMachine",
    "StepStats",
    "combined",
    "concurrency",
    "data",
    "ddl",
    "flush",
    "get_machine",
    "hostile",
    "jobs",
    "live",
    "machine",
    "rbac",
    "routing",
    "ttl",
]
