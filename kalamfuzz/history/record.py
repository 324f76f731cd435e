"""A history of concurrent calls: what each client sent, when, and what it was told.

Times are a monotonic clock's nanoseconds stamped around each request by the thread that sent
it; two calls are ordered in real time only when one's reply came before the other was sent
(closed intervals: equal stamps are concurrent). A call whose reply never came (lost) has no
completion: it may have taken effect at any point after it was sent, or never (Jepsen's
``info``).
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import evolve, frozen

from kalamfuzz.model.ops import Operation
from kalamfuzz.model.outcomes import Outcome, Unknown
from kalamfuzz.model.rows import Window


@frozen
class Call:
    #: Position in the history (also the call's id in reports).
    index: int
    #: The client connection it went over (``alice#1``): a lane of the report's timeline.
    lane: str
    op: Operation
    invoked_ns: int
    #: None: no reply came.
    completed_ns: int | None
    outcome: Outcome
    #: The wall-clock request window (ms) the model needs for TTL and the transcript.
    at: Window
    #: The statement as sent, and the reply in a few words, for reports.
    sql: str = ""
    reply: str = ""
    #: A read made after the round to see what it left (not one of the round's own calls).
    follow_up: bool = False

    @property
    def lost(self) -> bool:
        return self.completed_ns is None or isinstance(self.outcome, Unknown)

    def before(self, other: Call) -> bool:
        """This call's reply came before ``other`` was sent: every order puts it first."""
        return self.completed_ns is not None and self.completed_ns < other.invoked_ns


@frozen
class History:
    calls: tuple[Call, ...]

    def __len__(self) -> int:
        return len(self.calls)

    def lanes(self) -> list[str]:
        return list(dict.fromkeys(c.lane for c in self.calls))

    def sub(self, indexes: Sequence[int]) -> History:
        return History(tuple(self.calls[i] for i in indexes))

    def weakened(self, indexes: Sequence[int]) -> History:
        """These calls' replies made unknown (as if lost): any order that explains the history
        explains this one, so what stays unexplained after it is sound."""
        return History(
            tuple(
                evolve(c, outcome=Unknown(), completed_ns=None) if i in indexes else c
                for i, c in enumerate(self.calls)
            )
        )
