"""Item 4: a live subscription's ACK, snapshot pages, change stream, resume and reconstruction.

Checked against the model's :class:`~kalamfuzz.model.subscriptions.Subscription`, which recorded the
snapshot at subscribe time and the change every later write owes the subscriber.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from kalamfuzz.invariants import isolation, stream_ttl
from kalamfuzz.invariants.coerce import model_row
from kalamfuzz.invariants.violation import Finding, Violation, row_diff_lines
from kalamfuzz.model.catalog import Table, TableType
from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.model.results import ExpectedRow, match_rows
from kalamfuzz.model.rows import SeqBook, Window
from kalamfuzz.model.state import ModelState, subscription_view
from kalamfuzz.model.subscriptions import (
    ChangeType,
    ExpectedChange,
    Subscription,
    apply_change,
    projected_columns,
)
from kalamfuzz.model.values import SEQ, Row, Value, render_row
from kalamfuzz.observations import Change, LiveRegistryObservation, SubscriptionObservation


def _v(
    subj: str,
    summary: str,
    *diff: str,
    expected: str = "",
    observed: str = "",
    snapshot: bool = False,
) -> Violation:
    """A subscription finding; ``snapshot``: about the snapshot the client was sent (after a
    known one the snapshot is no longer judged; a change finding re-subscribes instead)."""
    return Violation(
        ContractItem.SUBSCRIPTIONS, subj, summary, expected, observed, tuple(diff), not snapshot
    )


def _seq(row: Row) -> int | None:
    s = row.get(SEQ)
    return s if isinstance(s, int) and not isinstance(s, bool) else None


def check_pages(sub: Subscription, obs: SubscriptionObservation, subj: str) -> list[Violation]:
    """Batch numbering, sizes, ``has_more`` and statuses of the snapshot pages."""
    out = []
    pages = obs.batches
    for i, b in enumerate(pages):
        last = not b.has_more
        problems = []
        if b.batch_num != i:
            problems.append(f"batch_num {b.batch_num}, expected {i}")
        if not last and len(b.rows) != sub.batch_size:
            problems.append(
                f"{len(b.rows)} rows in a non-final page of batch_size {sub.batch_size}"
            )
        if last and len(b.rows) > sub.batch_size:
            problems.append(f"{len(b.rows)} rows exceed batch_size {sub.batch_size}")
        if last and not b.rows and i > 0:
            problems.append("an empty final page after full pages (has_more was wrong)")
        status = "ready" if last else ("loading" if i == 0 else "loading_batch")
        if b.status != status:
            problems.append(f"status {b.status!r}, expected {status!r}")
        if last and i != len(pages) - 1:
            problems.append("has_more false before the last page")
        if problems:
            out.append(_v(subj, f"snapshot page {i} is malformed", *problems, snapshot=True))
    complete = bool(pages) and not pages[-1].has_more
    if obs.quiescent and not complete:
        out.append(
            _v(
                subj,
                "snapshot never reached status 'ready'",
                f"{len(pages)} page(s) seen",
                snapshot=True,
            )
        )
    return out


def _bucket(table: Table, change: ExpectedChange) -> Value:
    if table.type is TableType.STREAM and change.change_type is ChangeType.DELETE:
        return None
    return change.key


def _observed_bucket(pk: str, rows: Sequence[Row], old: Sequence[Row]) -> Value:
    for r in (*rows, *old):
        if pk in r:
            return r[pk]
    return None


def _side_ok(
    exp: ExpectedRow | None,
    got: Sequence[Row],
    seqs: SeqBook,
    learned: dict[int, int],
    absent_is_null: bool = False,
) -> bool:
    if exp is None:
        return not got
    if len(got) != 1:
        return False
    if absent_is_null:
        # KalamDB builds a delete's old row from the stored fields: a column added after the
        # row was written is absent rather than null (as NULLs are in an update's delta).
        got = [{**{k: None for k, v in exp.values.items() if v is None}, **got[0]}]
    diff = match_rows([exp], got, seqs)
    if diff.ok:
        learned.update(diff.learned)
    return diff.ok


def _matches(
    e: ExpectedChange,
    change: Change,
    rows: Sequence[Row],
    old: Sequence[Row],
    seqs: SeqBook,
    learned: dict[int, int],
) -> bool:
    found: dict[int, int] = {}
    deleted = e.change_type is ChangeType.DELETE
    ok = (
        e.change_type.value == change.change_type
        and _side_ok(e.rows, rows, seqs, found)
        and _side_ok(e.old_values, old, seqs, found, absent_is_null=deleted)
    )
    if ok:
        learned.update(found)
    return ok


def _render(change_type: str, rows: Sequence[Row], old: Sequence[Row]) -> str:
    parts = [change_type]
    if rows:
        parts.append("rows=" + ", ".join(render_row(r) for r in rows))
    if old:
        parts.append("old=" + ", ".join(render_row(r) for r in old))
    return " ".join(parts)


def _render_expected(exp: ExpectedChange, seqs: SeqBook) -> str:
    rows = [exp.rows.resolve(seqs)[0]] if exp.rows else []
    old = [exp.old_values.resolve(seqs)[0]] if exp.old_values else []
    return _render(exp.change_type.value, rows, old)


def check_changes(
    state: ModelState,
    table: Table,
    sub: Subscription,
    changes: Sequence[tuple[Change, list[dict[str, Value]], list[dict[str, Value]]]],
    quiescent: bool,
    subj: str,
) -> Finding:
    """Each expected change exactly once, in commit order per row, and nothing else."""
    pk = table.pk.name
    expected: dict[Value, list[ExpectedChange]] = {}
    for e in sub.changes:
        expected.setdefault(_bucket(table, e), []).append(e)
    observed: dict[
        Value, list[tuple[int, Change, list[dict[str, Value]], list[dict[str, Value]]]]
    ] = {}
    for i, c in enumerate(changes):
        observed.setdefault(_observed_bucket(pk, c[1], c[2]), []).append((i, *c))
    learned: dict[int, int] = {}
    out: list[Violation] = []
    scope = state.scope_key(table, sub.user_id)
    #: (arrival index, expected change) of every matched change, for the order across keys.
    arrivals: list[tuple[int, ExpectedChange]] = []
    for key in [*expected, *(k for k in observed if k not in expected)]:
        exps, obs = expected.get(key, []), observed.get(key, [])
        j = 0
        matched: list[ExpectedChange] = []
        for i, change, rows, old in obs:
            ok = False
            while j < len(exps):
                ok = _matches(exps[j], change, rows, old, state.seqs, learned)
                if ok or not exps[j].optional:
                    break
                j += 1
            if not ok and j < len(exps) and exps[j].leave:
                # The row left the filter and no delete said so; report that, not the
                # later changes of the key it would make look out of order.
                out.append(_left_silently(subj, key, exps[j], state.seqs))
                j += 1
                ok = j < len(exps) and _matches(exps[j], change, rows, old, state.seqs, learned)
            if ok:
                matched.append(exps[j])
                arrivals.append((i, exps[j]))
                j += 1
                continue
            seen = _render(change.change_type, rows, old)
            foreign = [
                r for r in (*rows, *old) if isolation.owner_elsewhere(state, table, scope, r)
            ]
            if foreign:
                out += isolation.leaks(state, table, scope, foreign, f"subscription {sub.sub_id}")
            elif dropped := sorted(
                {k for r in (*rows, *old) for k in r if table.column(k) is None}
                & {c for c, _ in table.former_types}
            ):
                # Found on a release build: after DROP COLUMN b, a subscription opened later
                # gets its UPDATE rows with b's old value (the snapshot and SELECT leave it out).
                out.append(
                    Violation(
                        ContractItem.SCHEMA_EVOLUTION,
                        subj,
                        "a live change carries a dropped column",
                        "the table's columns",
                        f"key {key!r} with {', '.join(dropped)}",
                        (f"+ {seen}",),
                    )
                )
            elif any(_matches(m, change, rows, old, state.seqs, {}) for m in matched):
                out.append(_v(subj, f"change for key {key!r} delivered twice", f"+ {seen}"))
            elif not exps:
                out.append(
                    _v(
                        subj,
                        f"change for key {key!r} that does not match the subscription",
                        f"+ {seen}",
                    )
                )
            else:
                want = _render_expected(exps[j], state.seqs) if j < len(exps) else "nothing more"
                out.append(
                    _v(
                        subj,
                        f"wrong or out-of-order change for key {key!r}",
                        f"- expected {want}",
                        f"+ observed {seen}",
                    )
                )
            break
        else:
            rest = [e for e in exps[j:] if not e.optional]
            if quiescent and rest and all(e.leave for e in rest):
                out.append(_left_silently(subj, key, rest[0], state.seqs))
            elif quiescent and rest:
                out.append(
                    _v(
                        subj,
                        f"{len(rest)} change(s) for key {key!r} never arrived",
                        *(f"- {_render_expected(e, state.seqs)}" for e in rest[:5]),
                    )
                )
    return out + _out_of_order(table, arrivals, state.seqs, subj), learned


def _left_silently(subj: str, key: Value, e: ExpectedChange, seqs: SeqBook) -> Violation:
    return _v(
        subj,
        f"no delete for key {key!r} when an UPDATE made it leave the filter",
        f"- expected {_render_expected(e, seqs)}",
    )


def _out_of_order(
    table: Table, arrivals: list[tuple[int, ExpectedChange]], seqs: SeqBook, subj: str
) -> list[Violation]:
    """A subscription watches one scope, and KalamDB keeps commit order per scope (WEBSOCKET.md
    §3.3), held changes included: a change of a later statement must not overtake an earlier
    one. STREAM expiries are left out: the server evicts on its own clock."""
    last: ExpectedChange | None = None
    for _, e in sorted(arrivals, key=lambda a: a[0]):
        if _bucket(table, e) is None:
            continue
        if last is not None and e.statement < last.statement:
            return [
                _v(
                    subj,
                    "changes arrived out of commit order",
                    f"+ first  {_render_expected(last, seqs)}",
                    f"+ then   {_render_expected(e, seqs)} (committed earlier)",
                )
            ]
        last = e
    return []


def reconstruct(
    table: Table,
    sub: Subscription,
    snapshot: Sequence[dict[str, Value]],
    changes: Sequence[tuple[Change, list[dict[str, Value]], list[dict[str, Value]]]],
) -> list[dict[str, Value]] | None:
    """The client's view after applying the snapshot and every change; None if it cannot be
    built (a projected STREAM subscription's deletes carry no identity)."""
    if table.type is TableType.STREAM:
        if sub.projection is not None:
            return None
        view: dict[Value, dict[str, Value]] = {r.get(SEQ): r for r in snapshot}
        for c, rows, old in changes:
            if c.change_type == ChangeType.INSERT.value:
                view.update({r.get(SEQ): r for r in rows})
            else:
                for o in old:
                    rid = str(o.get("row_id", ""))
                    tail = rid.rsplit(":", 1)[-1]
                    view.pop(int(tail) if tail.isdigit() else None, None)
        return list(view.values())
    pk = table.pk.name
    columns = projected_columns(table, sub.projection)
    state: dict[Value, dict[str, Value]] = {r.get(pk): dict(r) for r in snapshot}
    for c, rows, old in changes:
        apply_change(state, pk, c.change_type, rows, old, columns=columns)
    return list(state.values())


def check_subscription(
    state: ModelState, sub_id: str, obs: SubscriptionObservation, at: Window | None = None
) -> Finding:
    """Check everything the subscription delivered against one model state."""
    subj = f"subscription {sub_id}"
    sub = state.subs.get(sub_id)
    if sub is None:
        return [], {}
    table = state.catalog.tables.get(sub.table_id)
    if table is None:
        return [], {}
    if not obs.acked:
        return [
            _v(subj, "no subscription_ack", expected="ACK", observed=obs.error_code or "nothing")
        ], {}
    # A snapshot known to be wrong (a known finding) is not judged again: its changes are.
    trusted = sub.snapshot_trusted
    out = check_pages(sub, obs, subj) if trusted else []
    learned: dict[int, int] = {}

    # Rows were sent with the schema of subscribe time; a later ALTER (which ends the model's
    # following of the subscription) must not change how they read.
    sent_with = sub.schema or table

    def coerce(rows: Sequence[Mapping[str, object]]) -> list[dict[str, Value]]:
        return [model_row(sent_with, r) for r in rows]

    snapshot = coerce([r for b in obs.batches for r in b.rows])
    complete = bool(obs.batches) and not obs.batches[-1].has_more
    # A column the query does not name is its own finding; the rows are compared without it.
    named = {*projected_columns(sent_with, sub.projection), SEQ}
    extra = sorted({c for r in snapshot for c in r} - named)
    if extra:
        snapshot = [{k: v for k, v in r.items() if k in named} for r in snapshot]
        if trusted:
            out.append(
                _v(
                    subj,
                    f"snapshot rows carry columns the query does not name ({', '.join(extra)})",
                    snapshot=True,
                )
            )
    if trusted:
        out += _check_snapshot(state, table, sub, snapshot, complete, at, learned, subj)
    ready_at = obs.batches[-1].index if complete else None
    early = [c for c in obs.changes if ready_at is None or c.index < ready_at]
    if early:
        out.append(_v(subj, f"{len(early)} change(s) arrived before the 'ready' page"))
    changes = [(c, coerce(c.rows), coerce(c.old_values)) for c in obs.changes]
    if sub.active:
        found, more = check_changes(state, table, sub, changes, obs.quiescent, subj)
        out += found
        learned.update(more)
    if not out and trusted and obs.quiescent and complete and sub.active and sub.from_seq is None:
        view = reconstruct(table, sub, snapshot, changes)
        if view is not None:
            rdiff = match_rows(subscription_view(state, sub), view, state.seqs)
            if not rdiff.ok:
                out.append(
                    _v(
                        subj,
                        "snapshot + changes do not reconstruct the query's current result",
                        *row_diff_lines(rdiff.missing, rdiff.unexpected, table.pk.name),
                    )
                )
    return out, learned


def _check_snapshot(
    state: ModelState,
    table: Table,
    sub: Subscription,
    snapshot: list[dict[str, Value]],
    complete: bool,
    at: Window | None,
    learned: dict[int, int],
    subj: str,
) -> list[Violation]:
    """The snapshot's rows against the query's result at subscribe time (and a resume's point)."""
    out: list[Violation] = []
    scope = state.scope_key(table, sub.user_id)
    diff = match_rows(sub.snapshot, snapshot, state.seqs)
    learned.update(diff.learned)
    foreign = [
        u
        for u in diff.unexpected
        if isolation.owner_elsewhere(state, table, scope, u, diff.missing)
    ]
    out += isolation.leaks(state, table, scope, foreign, f"snapshot of {sub.sub_id}", diff.missing)
    expired = [
        u
        for u in diff.unexpected
        if u not in foreign and stream_ttl.expired(state, table, scope, u, at)
    ]
    out += stream_ttl.check_rows(
        state, table, scope, tuple(expired), at, f"snapshot of {sub.sub_id}"
    )
    rest = [u for u in diff.unexpected if u not in foreign and u not in expired]
    missing = list(diff.missing) if complete else []
    if rest or missing:
        key = table.pk.name if sub.projection is None or table.pk.name in sub.projection else None
        out.append(
            _v(
                subj,
                "snapshot differs from the model's query result",
                *row_diff_lines(missing, rest, key),
                expected=f"{len(sub.snapshot)} row(s)",
                observed=f"{len(snapshot)} row(s)",
                snapshot=True,
            )
        )
    seqs = [_seq(r) for r in snapshot]
    if any(a is not None and b is not None and a >= b for a, b in itertools.pairwise(seqs)):
        out.append(
            _v(subj, "snapshot is not ordered by _seq", f"_seq order {seqs[:10]}", snapshot=True)
        )
    if sub.from_seq is not None:
        replayed = [r for r in snapshot if (s := _seq(r)) is not None and s <= sub.from_seq]
        if replayed:
            out.append(
                _v(
                    subj,
                    f"resume from _seq {sub.from_seq} replayed older rows",
                    *(f"+ replayed {render_row(r)}" for r in replayed[:5]),
                    snapshot=True,
                )
            )
    return out


def check_live_registry(state: ModelState, obs: LiveRegistryObservation) -> Finding:
    """``system.live`` lists exactly the subscriptions open in the model (a closed one still
    listed is a leak), and each one's ``changes`` counter equals what its client received."""
    active = {sid for sid, sub in state.subs.items() if sub.active}
    listed = dict(obs.listed)
    out: list[Violation] = []
    missing, leaked = sorted(active - set(listed)), sorted(set(listed) - active)
    if missing or leaked:
        out.append(
            Violation(
                ContractItem.SUBSCRIPTIONS,
                "system.live",
                "system.live does not list exactly the open subscriptions",
                f"{len(active)} open",
                f"{len(listed)} listed",
                tuple(f"- missing {s}" for s in missing)
                + tuple(f"+ closed but listed {s}" for s in leaked),
            )
        )
    for sid in sorted(active & set(listed)):
        got = obs.received.get(sid)
        if got is not None and listed[sid] != got:
            out.append(
                Violation(
                    ContractItem.SUBSCRIPTIONS,
                    f"subscription {sid}",
                    "system.live changes counter differs from the notifications delivered",
                    f"changes = {got} (notifications the client received)",
                    f"changes = {listed[sid]}",
                    diverged=False,
                )
            )
    return out, {}
