"""A broken promise, structured for reports, and the verdict of a check over possible states."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from attrs import field, frozen

from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.model.rows import SeqBook
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.uncertain import Model
from kalamfuzz.model.values import Row, render_row, render_rows

T = TypeVar("T")


@frozen
class Violation:
    item: ContractItem
    #: What it is about: ``table ns.t scope u1``, ``subscription s1``, ``job FL-...``.
    subject: str
    summary: str
    expected: str = ""
    observed: str = ""
    #: A short minimal diff, one line each: ``- missing ...``, ``+ unexpected ...``, ``~ ...``.
    diff: tuple[str, ...] = ()
    #: The server holds other data than the model (after a known finding the driver re-learns
    #: it); False when only the answer's form is wrong: its columns, order or paging.
    diverged: bool = True

    @property
    def signature(self) -> str:
        """What makes two violations the same finding: the contract item and the summary with
        ids, counts and ``_seq`` values masked (a shrunk program renumbers them)."""
        return f"{self.item.value}: {masked(self.summary)}"

    def __str__(self) -> str:
        lines = [f"[{self.item.value}] {self.subject}: {self.summary}"]
        if self.expected:
            lines.append(f"  expected: {self.expected}")
        if self.observed:
            lines.append(f"  observed: {self.observed}")
        lines.extend(f"  {d}" for d in self.diff)
        return "\n".join(lines)


def masked(text: str) -> str:
    """``text`` with hex ids and numbers replaced by ``#``."""
    return re.sub(r"[0-9a-f]{6,}|\d+", "#", text)


def row_diff_lines(
    missing: Sequence[Row], unexpected: Sequence[Row], key: str | None, limit: int = 10
) -> tuple[str, ...]:
    """Pair missing and unexpected rows by key into ``~ key=k: col a -> b`` lines."""
    lines: list[str] = []
    extra = list(unexpected)
    for m in missing:
        partner = None
        if key is not None and key in m:
            for u in extra:
                if u.get(key) == m[key]:
                    partner = u
                    break
        if partner is None:
            lines.append(f"- missing    {render_row(m)}")
            continue
        extra.remove(partner)
        assert key is not None
        cols = sorted(set(m) | set(partner))
        changes = ", ".join(
            f"{c}: {m.get(c)!r} -> {partner.get(c)!r}"
            for c in cols
            if m.get(c) != partner.get(c) or type(m.get(c)) is not type(partner.get(c))
        )
        lines.append(f"~ wrong      {key}={m[key]!r}: {changes}")
    lines.extend(f"+ unexpected {render_row(u)}" for u in extra)
    if len(lines) > limit:
        lines = [*lines[:limit], f"... {len(lines) - limit} more"]
    return tuple(lines)


def rows_summary(rows: Iterable[Row]) -> str:
    return render_rows(rows)


def subject(table: object, scope: object = None) -> str:
    if scope is None:
        return f"table {table}"
    return f"table {table} scope {scope}"


@frozen
class Verdict:
    """The result of checking an observation against every possible model state.

    The observation passes when at least one state explains it; ``consistent`` lists those
    states and ``learned`` the ``_seq`` values they agree on. Otherwise ``violations`` are
    those of the first state.
    """

    violations: tuple[Violation, ...] = ()
    consistent: tuple[int, ...] = ()
    learned: Mapping[int, int] = field(factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def __str__(self) -> str:
        return "\n".join(str(v) for v in self.violations) or "ok"


Finding = tuple[list[Violation], dict[int, int]]


def over_states(model: Model, check: Callable[[ModelState], Finding]) -> Verdict:
    return over(model.states, check)


def over(items: Sequence[T], check: Callable[[T], Finding]) -> Verdict:
    """Check every possible state (or fork, one per state, in the same order)."""
    results = [check(x) for x in items]
    consistent = tuple(i for i, (v, _) in enumerate(results) if not v)
    if not consistent:
        return Verdict(tuple(results[0][0]), (), {})
    learned: dict[int, int] = {}
    for i in consistent:
        learned.update(results[i][1])
    return Verdict((), consistent, learned)


def seq_conflicts(seqs: SeqBook, learned: Mapping[int, int], subj: str) -> list[Violation]:
    """``_seq`` values that break commit order or change under a version already seen."""
    _, conflicts = seqs.bind_all(learned)
    return [
        Violation(ContractItem.TIERS, subj, "_seq out of commit order", diff=(why,))
        for why in conflicts
    ]
