"""Storage routing: tables on a second storage are flushed beside tables on the default one;
every cold file must land under its own table's storage and template, and nowhere else."""

from __future__ import annotations

from typing import ClassVar

from kalamfuzz.machines.base import machine
from kalamfuzz.machines.flush import FlushMachine


@machine("routing")
class RoutingMachine(FlushMachine):
    TABLES: ClassVar[tuple[str, ...]] = ("routed", "notes", "board")
