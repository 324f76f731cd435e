"""Growth: the same machine with every table starting at 100, 5,000 and 50,000 rows per scope.
A step's cost (and the check after it) must not grow with the table: reads and checks are
incremental, not scans. The model's memory is measured on the model alone, built to that size."""

from __future__ import annotations

from attrs import evolve, frozen

from kalamfuzz.bench.measure import PARTS, Measured, deep_size, measure
from kalamfuzz.campaign.engine import CampaignConfig
from kalamfuzz.machines.base import get_machine
from kalamfuzz.machines.world import COLUMNS, TABLES, TENANTS, background
from kalamfuzz.model import CreateNamespace, CreateTable, Insert, Model, Succeeded, Table
from kalamfuzz.model.catalog import Role, TableId, User

SIZES = (100, 5_000, 50_000)


@frozen
class Growth:
    rows: int
    runs: tuple[Measured, ...]
    model_bytes: int

    def parts_ms(self) -> dict[str, float]:
        """Milliseconds per step in each part (the background rows' setup not counted)."""
        return {p: self._per_step_ms(sum(r.split.as_dict()[p] for r in self.runs)) for p in PARTS}

    @property
    def ms_per_step(self) -> float:
        return sum(self.parts_ms().values())

    def _per_step_ms(self, seconds: float) -> float:
        return 1000 * seconds / (sum(r.steps for r in self.runs) or 1)

    @property
    def check_ms(self) -> float:
        """Milliseconds per step checking what the steps did (its reads, model, invariants)."""
        return self._per_step_ms(sum(r.check_s for r in self.runs))

    @property
    def check_server_ms(self) -> float:
        """The part of ``check_ms`` the target spent answering the check's reads."""
        return self._per_step_ms(sum(r.check_server_s for r in self.runs))


def grow(base: CampaignConfig, rows: int, runs: int) -> Growth:
    """``runs`` campaigns of ``base`` whose tables start with ``rows`` rows per scope."""
    measured = [
        measure(evolve(base, seed=base.seed + r, background_rows=rows), skip=("setup",))[0]
        for r in range(runs)
    ]
    return Growth(rows, tuple(measured), model_bytes(base.machine, rows))


def model_bytes(machine: str, rows: int) -> int:
    """The model's size once ``machine``'s tables hold ``rows`` rows in each scope (as a growth
    run's examples start), built without a server: every write applied as succeeded."""
    users = {t: f"u_{t}" for t in TENANTS} | {"root": "root"}
    model = Model.initial("/storage", users=[User(users[t], Role.USER) for t in TENANTS])
    model.apply(CreateNamespace("root", "ns"), Succeeded())
    for name in get_machine(machine).TABLES:
        spec = TABLES[name]
        table = Table(TableId("ns", name), spec.type, COLUMNS, access_level=spec.access)
        model.apply(CreateTable("root", table), Succeeded())
        for owner, batch in background(spec.type, rows):
            model.apply(Insert(users[owner], table.id, batch), Succeeded(row_count=len(batch)))
    return deep_size(model)
