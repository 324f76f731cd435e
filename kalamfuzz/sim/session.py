"""Values every statement module shares: who is asking, what a statement returns, what it changed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from attrs import define, frozen

from .catalog import ADMIN_ROLES, TableDef
from .store import Version


def now_ms() -> int:
    return int(time.time() * 1000)


@frozen
class Session:
    user_id: str
    role: str

    @property
    def admin(self) -> bool:
        return self.role in ADMIN_ROLES


@define
class Result:
    row_count: int
    as_user: str
    message: str | None = None
    schema: list[dict[str, Any]] | None = None
    rows: list[list[Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.schema is not None:
            out["schema"] = self.schema
        if self.rows is not None:
            out["rows"] = self.rows
        out["row_count"] = self.row_count
        if self.message is not None:
            out["message"] = self.message
        out["as_user"] = self.as_user
        return out


@frozen
class Change:
    """One committed row change, for live-query dispatch."""

    table: TableDef
    scope: str
    kind: str  # insert | update | delete
    new: Version | None
    old: Version | None
    old_was_cold: bool = False


@frozen
class Pending:
    """A statement paused half-way, so that a planted race has a window: the request sleeps
    ``delay`` seconds, then runs ``then``. Only planted bugs return one."""

    delay: float
    then: Callable[[], Result | Pending]


# A statement is planned (parsed, classified, permission-checked) before any statement of its
# request runs, then run: a plan error aborts the whole request with nothing executed.
Plan = Callable[[], Result | Pending]


def fold_results(results: list[Result], user: str) -> list[Result]:
    """KalamDB's multi-statement rule: DML counts are summed into trailing entries."""
    kept: list[Result] = []
    totals = {"Inserted": 0, "Updated": 0, "Deleted": 0}
    seen = dict.fromkeys(totals, False)
    for r in results:
        word = next((w for w in totals if r.message and r.message.startswith(w)), None)
        if word is None:
            kept.append(r)
        else:
            totals[word] += r.row_count
            seen[word] = True
    for word, total in totals.items():
        if seen[word]:
            kept.append(Result(row_count=total, as_user=user, message=f"{word} {total} row(s)"))
    return kept
