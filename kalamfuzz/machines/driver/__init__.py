"""The driver: one object that runs a step on the target, predicts it, and checks it.

Every step goes the one way the design allows: adapter call (observation) -> invariants against
the model -> model update. Machines call the driver with logical names and drawn values only, and
regression files call the very same methods, so a saved program replays what the machine did.

A driver lives for a whole campaign (users, storages and logins are made once); ``begin()``
starts a fresh example in its own namespace with a fresh model. After every step the driver checks
what the step touched (the written scope, the subscriptions on that table, the flush jobs still
running); ``sweep()`` checks everything at the end of an example.
"""

from kalamfuzz.machines.driver.ledger import StepStats
from kalamfuzz.machines.driver.lifecycle import Driver
from kalamfuzz.machines.driver.transcript import (
    Exchange,
    FailedExample,
    InvariantViolation,
    KnownFinding,
    Triage,
)

__all__ = [
    "Driver",
    "Exchange",
    "FailedExample",
    "InvariantViolation",
    "KnownFinding",
    "StepStats",
    "Triage",
]
