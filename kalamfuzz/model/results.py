"""Expected rows and their comparison with observed rows (multisets, ``_seq`` learned on the way)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from attrs import frozen

from kalamfuzz.model.rows import ScopeKey, SeqBook
from kalamfuzz.model.values import SEQ, FrozenRow, Row, Value, freeze


@frozen
class ExpectedRow:
    """One row the server must (or, when ``optional``, may) return."""

    values: Mapping[str, Value]
    #: Ordinal of the version whose ``_seq`` belongs in the row; None when ``_seq`` is absent.
    seq_of: int | None
    scope: ScopeKey
    key: Value
    optional: bool = False
    #: STREAM hard delete: the row is ``{"row_id": "<user>:<seq>"}`` instead of ``_seq``.
    row_id: bool = False

    def resolve(self, seqs: SeqBook) -> tuple[dict[str, Value], bool]:
        """The concrete row, and whether its ``_seq`` is still unknown (a wildcard)."""
        out = dict(self.values)
        if self.seq_of is None:
            return out, False
        seq = seqs.get(self.seq_of)
        if seq is None:
            return out, True
        if self.row_id:
            out["row_id"] = f"{self.scope}:{seq}"
        else:
            out[SEQ] = seq
        return out, False


@frozen
class RowDiff:
    missing: tuple[Mapping[str, Value], ...] = ()
    unexpected: tuple[Mapping[str, Value], ...] = ()
    #: ``_seq`` values learned for unbound versions: ordinal -> seq.
    learned: Mapping[int, int] = {}

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


def _strip_seq(row: Row, row_id: bool) -> FrozenRow:
    drop = "row_id" if row_id else SEQ
    return freeze({k: v for k, v in row.items() if k != drop})


def _seq_in(row: Row, row_id: bool) -> int | None:
    if row_id:
        raw = row.get("row_id")
        if isinstance(raw, str) and ":" in raw:
            tail = raw.rsplit(":", 1)[1]
            return int(tail) if tail.isdigit() else None
        return None
    seq = row.get(SEQ)
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def match_rows(expected: Sequence[ExpectedRow], observed: Sequence[Row], seqs: SeqBook) -> RowDiff:
    """Multiset comparison; an unknown ``_seq`` matches any value and is learned."""
    pool: Counter[FrozenRow] = Counter(freeze(r) for r in observed)
    originals: dict[FrozenRow, Row] = {freeze(r): r for r in observed}
    missing: list[Mapping[str, Value]] = []
    learned: dict[int, int] = {}
    wildcards: list[tuple[ExpectedRow, dict[str, Value]]] = []
    # Exact rows first, so a wildcard never steals the row an exact expectation needs.
    for optional_pass in (False, True):
        for exp in expected:
            if exp.optional != optional_pass:
                continue
            row, wildcard = exp.resolve(seqs)
            if wildcard:
                wildcards.append((exp, row))
                continue
            key = freeze(row)
            if pool[key] > 0:
                pool[key] -= 1
            elif not exp.optional:
                missing.append(row)
    # Observed rows by their value without _seq (or row_id), built once: a wildcard looks its
    # candidates up instead of scanning the pool (a 1,000-row page of fresh rows was 10^6
    # comparisons).
    stripped: dict[bool, dict[FrozenRow, list[FrozenRow]]] = {}
    for optional_pass in (False, True):
        for exp, row in wildcards:
            if exp.optional != optional_pass:
                continue
            index = stripped.get(exp.row_id)
            if index is None:
                index = stripped[exp.row_id] = {}
                for k in pool:
                    index.setdefault(_strip_seq(thaw_row(k), exp.row_id), []).append(k)
            candidates = [k for k in index.get(freeze(row), ()) if pool[k] > 0]
            if not candidates:
                if not exp.optional:
                    missing.append(row)
                continue
            pool[candidates[0]] -= 1
            observed_seqs = {_seq_in(thaw_row(k), exp.row_id) for k in candidates}
            seq = _seq_in(thaw_row(candidates[0]), exp.row_id)
            # Bind only when the choice is unambiguous.
            if len(observed_seqs) == 1 and seq is not None and exp.seq_of is not None:
                learned[exp.seq_of] = seq
    unexpected = [originals[k] for k, n in pool.items() for _ in range(n)]
    return RowDiff(missing=tuple(missing), unexpected=tuple(unexpected), learned=learned)


def thaw_row(frozen_row: FrozenRow) -> dict[str, Value]:
    return {k: v for k, _, v in frozen_row}


@frozen
class QueryResult:
    """The prediction for a SELECT."""

    columns: tuple[str, ...]
    rows: tuple[ExpectedRow, ...]
    #: ORDER BY keys as (column, descending); empty means the result is a multiset.
    order_by: tuple[tuple[str, bool], ...] = ()
    #: Exact row count required when LIMIT cut the result and the choice of rows is open.
    count: int | None = None
    #: Key column name, when projected, to pair missing and unexpected rows in reports.
    key_column: str | None = None

    def compare(self, observed: Sequence[Row], seqs: SeqBook) -> RowDiff:
        return match_rows(self.rows, observed, seqs)
