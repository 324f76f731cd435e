"""The suite's scenarios, registered by decorator in the module of their story."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from attrs import frozen

from kalamfuzz.model.catalog import Role
from kalamfuzz.scenarios.scale import Scale

if TYPE_CHECKING:
    from kalamfuzz.scenarios.run import Run

#: The seed documents' three parts.
STORIES = {
    "e2e": "KalamDB E2E scenarios (kalamdb-e2e-scenarios.md)",
    "live": "User Story 11: live query change detection (test_live_query_changes.rs)",
    "stress": "User Story 12: memory leak and performance stress (test_stress_and_memory.rs)",
}


def standard_cast(scale: Scale) -> dict[str, Role]:
    """u1..uN (role user), a service ``svc`` that writes AS USER, and an admin ``dba``."""
    cast = {f"u{i}": Role.USER for i in range(1, scale.users + 1)}
    return cast | {"svc": Role.SERVICE, "dba": Role.DBA}


@frozen
class Scenario:
    id: str
    title: str
    story: str
    program: Callable[[Run], None]
    #: Planted sim bugs in this scenario's domain: each must make it fail.
    covers: tuple[str, ...] = ()
    cast: Callable[[Scale], Mapping[str, Role]] = standard_cast
    #: Extra storages (filesystem, under the target's data directory) by logical name.
    storages: tuple[str, ...] = ()

    @property
    def doc(self) -> str:
        return (self.program.__doc__ or "").strip()


SCENARIOS: dict[str, Scenario] = {}

#: Planted bugs no seed scenario reaches, and why (the fuzz machines hunt them).
NOT_IN_ANY_SCENARIO = {
    "wal_batched": "the seed's scenarios never kill the server",
    "partial_parquet_on_crash": "the seed's scenarios never kill the server",
    "restart_dml_blind": "the seed's scenarios never restart the server",
    "flush_race_clears_pending": "needs a write to land while a flush job runs; the sim's job "
    "runs for milliseconds, so no fixed program hits it every time",
    "flush_drops_concurrent_writes": "needs a write to land while a flush job runs (the soak, "
    "E13, meets it in most runs, but not under load: a CI run missed it)",
    "dml_never_true_refused": "no seed step sends a WHERE that can never be true",
    "lost_update": "the seed's parallel writers never write one row at once",
    "pk_insert_race": "the seed's parallel writers never insert one key at once",
    "dirty_read": "the seed's scenarios send no explicit transaction",
    "partial_commit": "the seed's scenarios send no explicit transaction",
    "live_before_commit": "the seed's scenarios send no explicit transaction",
    "weak_password_accepted": "the seed's scenarios send only well-formed requests",
    "token_issuer_unchecked": "the seed's scenarios send only well-formed requests",
    "role_claim_trusted": "the seed's scenarios send only well-formed requests",
    "crash_on_sql_list": "the seed's scenarios send only well-formed requests",
    "alter_ignores_owner": "in the seed's scenarios only admins alter tables",
}


def scenario(
    id: str,
    title: str,
    story: str,
    *,
    covers: tuple[str, ...] = (),
    storages: tuple[str, ...] = (),
) -> Callable[[Callable[[Run], None]], Callable[[Run], None]]:
    def register(program: Callable[[Run], None]) -> Callable[[Run], None]:
        if id in SCENARIOS:
            raise ValueError(f"scenario {id} registered twice")
        SCENARIOS[id] = Scenario(id, title, story, program, covers, storages=storages)
        return program

    return register
