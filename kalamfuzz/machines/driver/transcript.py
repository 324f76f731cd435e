"""What a driver records: the exchanges of an example, its known findings, and the failure that
ended it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import frozen

from kalamfuzz.invariants.violation import Violation
from kalamfuzz.machines.codegen import Step
from kalamfuzz.observations import QueryObservation, StatementObservation


class InvariantViolation(AssertionError):
    """The target broke the contract. ``violations`` say which item, what and where; ``new``
    are those that are not known findings (all of them when the driver has no triage)."""

    def __init__(
        self, violations: Sequence[Violation], step: str, new: Sequence[Violation] | None = None
    ) -> None:
        self.violations = tuple(violations)
        self.new = tuple(new) if new is not None else self.violations
        self.step = step
        text = "\n".join(str(v) for v in self.violations)
        super().__init__(f"after {step}:\n{text}")

    @property
    def items(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.item.value for v in self.new))

    @property
    def signature(self) -> str:
        """What makes two failures the same: the signatures of the new violations."""
        return " | ".join(sorted({v.signature for v in self.new}))


#: Decides whether a violation is a known finding: called with the violation, the statement the
#: check was about and the events of the example so far; returns the label it is counted under,
#: or None when it is new (see :mod:`kalamfuzz.campaign.known`).
Triage = Callable[[Violation, str, frozenset[str]], "str | None"]


@frozen
class KnownFinding:
    """A violation the triage knew: counted, and the model re-learned what it got wrong."""

    label: str
    signature: str
    step: int
    where: str


@frozen
class Exchange:
    """One request and what came back, secrets redacted: the transcript's unit."""

    step: int
    actor: str
    kind: str  # sql | ws | fault
    request: str
    reply: Mapping[str, Any]
    sent_ms: int
    recv_ms: int
    #: Sent to check what the steps did (a read-back, a job poll, the sweep), not as a step's
    #: own operation: ``kalamfuzz bench`` replays the others alone for the ceiling.
    check: bool = False


@frozen
class FailedExample:
    """What an example that failed leaves for shrinking and saving."""

    program: tuple[Step, ...]
    transcript: tuple[Exchange, ...]
    error: BaseException
    #: Signatures of the known findings the example went past before it failed.
    tolerated: tuple[str, ...] = ()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def tolerating(signatures: frozenset[str]) -> Triage:
    """A triage that counts the violations with these signatures as known."""

    def triage(violation: Violation, where: str, events: frozenset[str]) -> str | None:
        return violation.signature if violation.signature in signatures else None

    return triage


def reply_of(obs: StatementObservation | QueryObservation) -> dict[str, Any]:
    """A statement's reply as the transcript shows it."""
    out: dict[str, Any] = {"status": obs.status}
    for key in ("code", "message", "row_count", "job_id"):
        value = getattr(obs, key, None)
        if value is not None:
            out[key] = value
    if obs.lost:
        out["lost"] = True
    return out


def ws_json(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), sort_keys=False)
