"""A failing history for people: the calls as lanes on a timeline, the smallest set of replies
no order explains, and how far the best order got (Knossos's final path).

Time is shown as ranks of the distinct send and reply stamps (Porcupine's timestamp mapping):
what matters is which call was answered before which was sent, not milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kalamfuzz.history.check import Unexplained, Verdict
from kalamfuzz.history.record import Call, History
from kalamfuzz.model.state import ModelState

#: Offline re-checks the witness search may run (no server calls).
MAX_WEAKENINGS = 50

Checker = Callable[[History], Verdict]


def witness(history: History, failed: Unexplained, recheck: Checker) -> tuple[int, ...]:
    """The calls whose replies must stay as seen for no order to explain them: each other
    reply is made unknown in turn (a read dropped, a write optional) while the history stays
    unexplained. Weakening, not deleting: a deleted write could be what explained a read, and
    any order that explains the history explains a weakened one, so what stays is sound."""
    kept: list[int] = []
    for n, i in enumerate(failed.calls):
        if n >= MAX_WEAKENINGS:
            kept += list(failed.calls[n:])
            break
        trial = history.weakened([i])
        if isinstance(recheck(trial), Unexplained):
            history = trial
        else:
            kept.append(i)
    return tuple(kept)


def lanes(history: History, marked: Sequence[int] = ()) -> list[str]:
    """One line per call: its lane, a bar from send to reply (``>`` runs on: no reply), the
    statement and the reply; ``*`` marks the calls of the witness."""
    stamps = sorted(
        {c.invoked_ns for c in history.calls}
        | {c.completed_ns for c in history.calls if c.completed_ns is not None}
    )
    rank = {t: i for i, t in enumerate(stamps)}
    width = 2 * len(stamps) + 1
    name_w = max(len(c.lane) for c in history.calls)
    out = []
    for c in history.calls:
        start = 2 * rank[c.invoked_ns]
        if c.completed_ns is None:
            bar = " " * start + "[" + ">" * (width - start - 1)
        else:
            end = 2 * rank[c.completed_ns]
            bar = " " * start + "[" + "-" * max(0, end - start - 1) + "]"
        mark = "*" if c.index in marked else " "
        out.append(
            f"{mark} #{c.index + 1} {c.lane:<{name_w}} {bar:<{width}}  {_short(c.sql)} -> {c.reply}"
        )
    return out


def report(
    history: History,
    initial: Sequence[ModelState],
    failed: Unexplained,
    recheck: Checker,
    describe: Callable[[ModelState, Call], str],
    points: Callable[[Call], int],
) -> tuple[tuple[int, ...], list[str]]:
    """The witness and the lines of a report: the timeline, then the longest order and why
    none of the calls left could come next."""
    marked = witness(history, failed, recheck)
    lines = ["calls sent at once (time runs right; * no order explains these replies):"]
    lines += ["  " + line for line in lanes(history, marked)]
    placed = [
        f"#{i + 1}" + (" takes its snapshot" if p == 0 and points(history.calls[i]) == 2 else "")
        for i, p in failed.longest
    ]
    lines.append("the longest order that explains a prefix: " + (" then ".join(placed) or "(none)"))
    for i in failed.stuck:
        lines.append(f"  #{i + 1} cannot come next: {describe(failed.state, history.calls[i])}")
    return marked, lines


def _short(sql: str, limit: int = 110) -> str:
    return sql if len(sql) <= limit else sql[: limit - 3] + "..."


__all__ = ["lanes", "report", "witness"]
