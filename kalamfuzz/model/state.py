"""One possible state of the server, and how each operation predicts and changes it.

``execute(state, op, at)`` returns the prediction and the state after a *successful* run of the
operation; everything else (a failure, an unknown outcome, a job finishing) is composed from
that in :mod:`kalamfuzz.model.uncertain`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from attrs import evolve, field, frozen

from kalamfuzz.model import exprs
from kalamfuzz.model import permissions as perm
from kalamfuzz.model.catalog import Catalog, Role, Storage, Table, TableId, TableType, User
from kalamfuzz.model.jobs import Job, JobStatus
from kalamfuzz.model.ops import (
    DEFAULT_QUERY_LIMIT,
    MAX_QUERY_LIMIT,
    AlterAddColumn,
    AlterDropColumn,
    CreateNamespace,
    CreateStorage,
    CreateTable,
    CreateUser,
    Delete,
    DropTable,
    Flush,
    Insert,
    JobFinished,
    Join,
    Operation,
    Restart,
    Select,
    SetStorageWritable,
    Subscribe,
    Transaction,
    TxBegin,
    Unsubscribe,
    Update,
)
from kalamfuzz.model.outcomes import (
    ContractItem,
    FlushSkipped,
    FlushStarted,
    JobEnds,
    Ok,
    OneOf,
    Prediction,
    Rejected,
    Subscribed,
    execution_error,
    permission_denied,
)
from kalamfuzz.model.results import ExpectedRow, QueryResult
from kalamfuzz.model.rows import Scope, ScopeKey, SeqBook, Version, Window, materialize
from kalamfuzz.model.streams import Seen, visibility
from kalamfuzz.model.subscriptions import (
    Subscription,
    change_for_write,
    full_row,
    projected_columns,
    snapshot_row,
    stream_delete_change,
)
from kalamfuzz.model.tiers import ExpectedCold, cleared, expected_cold, flush_scope, pending
from kalamfuzz.model.values import DELETED, SEQ, ModelError, Value
from kalamfuzz.model.where import Pred, columns, matches, pinned_keys

Data = Mapping[TableId, Mapping[ScopeKey, Scope]]


@frozen
class ModelState:
    catalog: Catalog
    data: Data = field(factory=dict)
    seqs: SeqBook = field(factory=SeqBook)
    #: Ordinal of the last version written: the model's commit order.
    clock: int = 0
    jobs: Mapping[str, Job] = field(factory=dict)
    subs: Mapping[str, Subscription] = field(factory=dict)
    #: ``clock`` when the server was last restarted: every version up to it was acknowledged
    #: before the restart, and must have outlived it.
    restarted_at: int | None = None
    #: The snapshots of transactions that began beside others and have not committed yet.
    snapshots: Mapping[str, ModelState] = field(factory=dict)

    @classmethod
    def initial(
        cls, storage_base: str, root: str = "root", users: Iterable[User] = ()
    ) -> ModelState:
        """A fresh server: root (system role) and the ``local`` storage under ``storage_base``."""
        catalog = Catalog().with_user(User(root, Role.SYSTEM))
        catalog = catalog.with_storage(Storage("local", storage_base))
        for u in users:
            catalog = catalog.with_user(u)
        return cls(catalog=catalog)

    # --- reading the state ---------------------------------------------------------------

    def scopes(self, table_id: TableId) -> Mapping[ScopeKey, Scope]:
        return self.data.get(table_id, {})

    def scope(self, table_id: TableId, key: ScopeKey) -> Scope:
        return self.scopes(table_id).get(key, Scope())

    def scope_key(self, table: Table, user_id: str) -> ScopeKey:
        return user_id if table.type.per_user else None

    def visible_rows(self, table_id: TableId, key: ScopeKey) -> list[dict[str, Value]]:
        """The scope's current rows (tombstones hidden, no TTL) with ``_seq`` where known."""
        table = self.catalog.table(table_id)
        out = []
        for v in self.scope(table_id, key).live(table):
            row = full_row(table, v)
            seq = self.seqs.get(v.ordinal)
            if seq is not None:
                row[SEQ] = seq
            out.append(row)
        return out

    def expected_cold(self, table_id: TableId, key: ScopeKey) -> ExpectedCold:
        table = self.catalog.table(table_id)
        storage = self.catalog.storages[table.storage_id]
        return expected_cold(table, storage, key, self.scope(table_id, key), self.seqs)

    def flushed_scopes(self) -> list[tuple[TableId, ScopeKey]]:
        """The scopes that may have cold files: flushed, or no longer predicted (re-learned)."""
        return [
            (tid, key)
            for tid, scopes in sorted(self.data.items(), key=lambda kv: str(kv[0]))
            for key, scope in scopes.items()
            if scope.has_cold or scope.relearned
        ]

    def failed_flushes(self, table_id: TableId) -> list[Job]:
        """The table's flush jobs that ended failed (their rows must have stayed hot)."""
        return [
            j for j in self.jobs.values() if j.table_id == table_id and j.status is JobStatus.FAILED
        ]

    def learn(self, learned: Mapping[int, int]) -> ModelState:
        """Bind server ``_seq`` values; conflicting ones are ignored (the invariants report them)."""
        seqs, _ = self.seqs.bind_all(learned)
        return evolve(self, seqs=seqs) if seqs is not self.seqs else self


# --- shared checks ----------------------------------------------------------------------------


def _missing_table(state: ModelState, actor: str, table_id: TableId) -> Rejected:
    """Refused: no such table (which one is redacted for callers below dba)."""
    return execution_error(f"table {table_id} does not exist", ContractItem.TIERS, str(table_id))


def _session(
    state: ModelState, actor: str, as_user: str | None, table: Table, dml: bool = True
) -> tuple[Role, str] | Rejected:
    """The role and user the statement runs as, or why EXECUTE AS USER is refused.

    KalamDB checks the impersonation matrix first, then refuses DML on a SHARED table; a
    wrapped SELECT on a SHARED table runs like any other, as role user (execution_paths.rs:
    the refusal looks at INSERT/UPDATE/DELETE only; docs/reference/sql.md rule 7)."""
    actor_role = state.catalog.role_of(actor)
    if as_user is None:
        return actor_role, actor
    if not perm.can_impersonate(actor_role, actor, state.catalog.role_of(as_user), as_user):
        return permission_denied(f"{actor} ({actor_role.value}) may not EXECUTE AS USER {as_user}")
    if dml and table.type is TableType.SHARED:
        return execution_error(
            "EXECUTE AS USER is not allowed on SHARED tables",
            ContractItem.RBAC,
            "EXECUTE AS USER",
        )
    # The wrapped statement runs with role `user` (HTTP_SQL.md §2.6).
    return Role.USER, as_user


def _unknown_columns(
    state: ModelState, table: Table, names: Iterable[str], actor: str
) -> Rejected | None:
    for name in names:
        if not table.knows(name):
            why = "was dropped" if name in table.dropped else "does not exist"
            # Redaction keeps column-not-found messages for every caller.
            return execution_error(
                f"column {name!r} {why}",
                ContractItem.SCHEMA_EVOLUTION,
                name,
                codes=frozenset({"SQL_EXECUTION_ERROR", "INVALID_SQL"}),
                kept=True,
            )
    return None


def _where_row(table: Table, state: ModelState, version: Version) -> dict[str, Value]:
    row = full_row(table, version)
    seq = state.seqs.get(version.ordinal)
    if seq is not None:
        row[SEQ] = seq
    return row


def _matcher(pred: Pred | None, table: Table, state: ModelState) -> Callable[[Version], bool]:
    """WHERE ``pred`` as a test of a version; what the predicate names is looked at once per
    statement, not once per row."""
    if pred is None:
        return lambda _v: True
    needs_seq = SEQ in columns(pred)

    def test(version: Version) -> bool:
        if needs_seq and state.seqs.get(version.ordinal) is None:
            raise ModelError("a WHERE on _seq needs every candidate row's _seq to be known")
        return matches(pred, _where_row(table, state, version))

    return test


# --- writes -----------------------------------------------------------------------------------


@frozen
class _Write:
    scope: ScopeKey
    old: Version | None
    new: Version | None  # None: a STREAM hard delete of ``old``
    #: The write may not have happened (STREAM row at its TTL boundary).
    maybe: bool = False


def _commit(state: ModelState, table: Table, writes: Sequence[_Write]) -> ModelState:
    scopes = dict(state.scopes(table.id))
    subs = dict(state.subs)
    # Each scope is rebuilt once per statement: per row, a 1,000-row INSERT into a 50,000-row
    # scope copied the scope a thousand times.
    added: dict[ScopeKey, list[Version]] = {}
    removed: dict[ScopeKey, set[int]] = {}
    for w in writes:
        if w.new is None:
            assert w.old is not None
            removed.setdefault(w.scope, set()).add(w.old.ordinal)
        else:
            added.setdefault(w.scope, []).append(w.new)
        for sid, sub in subs.items():
            if not sub.active or sub.table_id != table.id:
                continue
            if table.type.per_user and sub.user_id != w.scope:
                continue
            if w.new is None:
                assert w.old is not None
                change = stream_delete_change(table, sub, w.scope, w.old, w.maybe)
            else:
                change = change_for_write(table, sub, w.scope, w.old, w.new)
            if change is not None:
                subs[sid] = subs[sid].with_change(evolve(change, statement=state.clock))
    for key in added.keys() | removed.keys():
        scope = scopes.get(key, Scope()).remove(frozenset(removed.get(key, ())))
        scopes[key] = scope.extend(added.get(key, []))
    written = [w.new.ordinal for w in writes if w.new is not None]
    clock = max([state.clock, *written])
    # KalamDB promises no order among the rows of one statement (docs/contract.md).
    seqs = state.seqs.statement(min(written), max(written)) if written else state.seqs
    return evolve(state, data={**state.data, table.id: scopes}, subs=subs, clock=clock, seqs=seqs)


def _insert(
    state: ModelState, op: Insert, at: Window | None
) -> tuple[Prediction | OneOf, ModelState]:
    table = state.catalog.tables.get(op.table_id)
    if table is None:
        return _missing_table(state, op.actor, op.table_id), state
    session = _session(state, op.actor, op.as_user, table)
    if isinstance(session, Rejected):
        return session, state
    role, user = session
    if not perm.can_write(role, table):
        return permission_denied(f"{role.value} may not write {table.id}"), state
    bad = _unknown_columns(state, table, {c for r in op.rows for c in r}, op.actor)
    if bad is not None:
        return bad, state
    pk = table.pk.name
    key = state.scope_key(table, user)
    scope = state.scope(table.id, key)
    seen: set[Value] = set()
    versions = []
    for i, raw in enumerate(op.rows):
        values: dict[str, Value] = {}
        for col in table.columns:
            cell = raw.get(col.name, col.default)
            if not col.type.accepts(cell):
                raise ModelError(f"{cell!r} is not a {col.type.value} for {col.name}")
            if cell is None and (not col.nullable or col.primary_key):
                return (
                    execution_error(
                        f"NULL in NOT NULL column {col.name}", ContractItem.TIERS, kept=True
                    ),
                    state,
                )
            values[col.name] = cell
        # STREAM tables are event logs keyed by _seq: KalamDB enforces no key uniqueness there.
        if values[pk] in seen and table.type is not TableType.STREAM:
            return _pk_violation(values[pk], "twice in one INSERT"), state
        seen.add(values[pk])
        versions.append(
            Version(state.clock + 1 + i, values[pk], values, table.schema_version, False, at)
        )
    ok = Ok(row_count=len(versions))
    after = _commit(state, table, [_Write(key, None, v) for v in versions])
    if table.type is TableType.STREAM:
        return ok, after
    latest = scope.latest()
    for v in versions:
        cur = latest.get(v.key)
        if cur is not None and not cur.deleted:
            return _pk_violation(v.key, "key exists"), state
    return ok, after


def _pk_violation(key: Value, why: str) -> Rejected:
    return execution_error(
        f"duplicate primary key {key!r} ({why})",
        ContractItem.IDEMPOTENCY,
        "Primary key violation",
        kept=True,
    )


def _dml_checks(
    state: ModelState, actor: str, as_user: str | None, table: Table, names: Iterable[str]
) -> tuple[Role, str] | Rejected:
    session = _session(state, actor, as_user, table)
    if isinstance(session, Rejected):
        return session
    role, _ = session
    if not perm.can_write(role, table):
        return permission_denied(f"{role.value} may not write {table.id}")
    bad = _unknown_columns(state, table, names, actor)
    return bad if bad is not None else session


def _update(state: ModelState, op: Update) -> tuple[Prediction | OneOf, ModelState]:
    table = state.catalog.tables.get(op.table_id)
    if table is None:
        return _missing_table(state, op.actor, op.table_id), state
    names = {c for c, _ in op.assignments} | columns(op.where)
    names |= {n for _, v in op.assignments for n in exprs.columns(v)}
    session = _dml_checks(state, op.actor, op.as_user, table, names)
    if isinstance(session, Rejected):
        return session, state
    _, user = session
    if table.type is TableType.STREAM:
        return (
            execution_error("UPDATE on a STREAM table", ContractItem.STREAM_TTL, "UPDATE"),
            state,
        )
    if op.where is None:
        return execution_error("UPDATE without WHERE", ContractItem.TIERS, "WHERE"), state
    for col_name, _ in op.assignments:
        col = table.column(col_name)
        assert col is not None
        if col.primary_key:
            return (
                execution_error(
                    "UPDATE of the primary key", ContractItem.TIERS, col_name, kept=True
                ),
                state,
            )
    # A constant is checked before any row is read: a NULL for a NOT NULL column is refused
    # even when the WHERE matches nothing.
    constants = {c: exprs.evaluate(v, {}) for c, v in op.assignments if not exprs.computed(v)}
    bad = _bad_assignment(table, constants, constants.items())
    if bad is not None:
        return bad, state
    key = state.scope_key(table, user)
    writes = []
    clock = state.clock
    where = _matcher(op.where, table, state)
    for old in _rows(state.scope(table.id, key), table, op.where, keep_deleted=False):
        if not where(old):
            continue
        values = materialize(table, old)
        new_values = dict(values)
        for col_name, assigned in op.assignments:
            # Every SET reads the row as it was before the statement (SQL semantics).
            new_values[col_name] = exprs.evaluate(assigned, values)
        bad = _bad_assignment(table, new_values, op.assignments)
        if bad is not None:
            return bad, state
        if new_values == values:
            continue  # a no-op UPDATE writes nothing and is not counted
        clock += 1
        writes.append(_Write(key, old, Version(clock, old.key, new_values, table.schema_version)))
    return Ok(row_count=len(writes)), _commit(state, table, writes)


def _bad_assignment(
    table: Table, values: Mapping[str, Value], assignments: Iterable[tuple[str, object]]
) -> Rejected | None:
    for col_name, _ in assignments:
        col = table.column(col_name)
        assert col is not None
        value = values[col_name]
        if col.type.accepts_kind(value) and not col.type.accepts(value):
            # computed: an Int64 sum assigned to an INT column (both servers refuse the cast)
            return execution_error(
                f"{value!r} is out of range for {col_name} ({col.type.value})", ContractItem.TIERS
            )
        if not col.type.accepts(value):
            raise ModelError(f"{value!r} is not a {col.type.value} for {col_name}")
        if value is None and not col.nullable:
            return execution_error(
                f"NULL in NOT NULL column {col_name}", ContractItem.TIERS, kept=True
            )
    return None


def _delete(
    state: ModelState, op: Delete, at: Window | None
) -> tuple[Prediction | OneOf, ModelState]:
    table = state.catalog.tables.get(op.table_id)
    if table is None:
        return _missing_table(state, op.actor, op.table_id), state
    session = _dml_checks(state, op.actor, op.as_user, table, columns(op.where))
    if isinstance(session, Rejected):
        return session, state
    _, user = session
    if op.where is None:
        return execution_error("DELETE without WHERE", ContractItem.TIERS, "WHERE"), state
    key = state.scope_key(table, user)
    writes: list[_Write] = []
    where = _matcher(op.where, table, state)
    if table.type is TableType.STREAM:
        maybe = 0
        for ev in state.scope(table.id, key).hot:
            seen = _stream_seen(state, table, ev, at)
            if seen is Seen.NO or not where(ev):
                continue
            # A row at its TTL boundary is either deleted or already invisible: later reads
            # cannot tell the two apart, so the model removes it either way.
            maybe += seen is Seen.MAYBE
            writes.append(_Write(key, ev, None, maybe=seen is Seen.MAYBE))
        certain = len(writes) - maybe
        pred = Ok(row_count=certain, row_count_max=certain + maybe if maybe else None)
        return pred, _commit(state, table, writes)
    clock = state.clock
    for old in _rows(state.scope(table.id, key), table, op.where, keep_deleted=False):
        if where(old):
            clock += 1
            tomb = Version(
                clock, old.key, materialize(table, old), table.schema_version, deleted=True
            )
            writes.append(_Write(key, old, tomb))
    return Ok(row_count=len(writes)), _commit(state, table, writes)


def _stream_seen(state: ModelState, table: Table, ev: Version, at: Window | None) -> Seen:
    if at is None:
        raise ModelError("a statement on a STREAM table needs its request window (at=...)")
    assert table.ttl_seconds is not None
    return visibility(ev, state.seqs.get(ev.ordinal), table.ttl_seconds, at)


# --- reads ------------------------------------------------------------------------------------


def _candidates(
    state: ModelState, table: Table, key: ScopeKey, where: Pred | None, at: Window | None
) -> list[tuple[Version, bool]]:
    """(version, optional) pairs a read of the scope sees, in commit order."""
    scope = state.scope(table.id, key)
    if table.type is TableType.STREAM:
        out = []
        for ev in scope.hot:
            seen = _stream_seen(state, table, ev, at)
            if seen is not Seen.NO:
                out.append((ev, seen is Seen.MAYBE))
        return out
    return [(v, False) for v in _rows(scope, table, where, DELETED in columns(where))]


def _rows(scope: Scope, table: Table, where: Pred | None, keep_deleted: bool) -> list[Version]:
    """The newest version of each row of a (not STREAM) scope ``where`` may match, in commit
    order; tombstones too when ``keep_deleted``."""
    keys = pinned_keys(where, table.pk.name, table.pk.type)
    if keys is None:
        return scope.with_tombstones() if keep_deleted else scope.live(table)
    # A statement by primary key looks its rows up: its cost is the keys', not the scope's.
    latest = scope.latest()
    found = (latest.get(k) for k in dict.fromkeys(keys))
    named = [v for v in found if v is not None and (keep_deleted or not v.deleted)]
    return sorted(named, key=lambda v: v.ordinal)


def _select(state: ModelState, op: Select, at: Window | None) -> Prediction | OneOf:
    table = state.catalog.tables.get(op.table_id)
    if table is None:
        return _missing_table(state, op.actor, op.table_id)
    session = _session(state, op.actor, op.as_user, table, dml=False)
    if isinstance(session, Rejected):
        return session
    role, user = session
    if not perm.can_read(role, table):
        return permission_denied(f"{role.value} may not read {table.id}")
    names = set(op.projection or ()) | columns(op.where) | {c for c, _ in op.order_by}
    bad = _unknown_columns(state, table, names, op.actor)
    if bad is not None:
        return bad
    key = state.scope_key(table, user)
    cols = table.star_columns if op.projection is None else op.projection
    where = _matcher(op.where, table, state)
    picked = [(v, opt) for v, opt in _candidates(state, table, key, op.where, at) if where(v)]
    keys: list[tuple[Any, ...]] = []
    if op.order_by:
        sort_key = _sort_key(table, op.order_by)
        keyed = sorted(((sort_key(v), v, opt) for v, opt in picked), key=lambda t: t[0])
        keys = [k for k, _, _ in keyed]
        picked = [(v, opt) for _, v, opt in keyed]
    limit = min(op.limit if op.limit is not None else DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT)
    count = None
    if len(picked) > limit:
        if any(opt for _, opt in picked) or not op.order_by:
            picked = [(v, True) for v, _ in picked]
        else:
            edge = keys[limit - 1]
            ties = [k == edge for k in keys]
            # Rows tied with the last one kept are interchangeable only if a tie was cut off.
            open_tie = any(ties[limit:])
            picked = [
                (v, open_tie and tie)
                for (v, _), tie, k in zip(picked, ties, keys, strict=True)
                if not edge < k
            ]
        count = limit
    rows = tuple(
        ExpectedRow(
            values={c: r[c] for c in cols if c != SEQ},
            seq_of=v.ordinal if SEQ in cols else None,
            scope=key,
            key=v.key,
            optional=opt,
        )
        for v, opt in picked
        for r in [full_row(table, v)]
    )
    pk = table.pk.name
    return QueryResult(
        columns=tuple(cols),
        rows=rows,
        order_by=op.order_by,
        count=count,
        key_column=pk if pk in cols else None,
    )


class _Desc:
    """A sort-key element in reverse order (DESC)."""

    __slots__ = ("item",)

    def __init__(self, item: tuple[bool, Any]) -> None:
        self.item = item

    def __lt__(self, other: _Desc) -> bool:
        return other.item < self.item

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.item == other.item

    __hash__ = None  # type: ignore[assignment]


def _sort_key(
    table: Table, order_by: Sequence[tuple[str, bool]]
) -> Callable[[Version], tuple[Any, ...]]:
    """ORDER BY as a sort key, one row built per version (a comparison function built two per
    comparison: 50,000 rows took seconds a page). NULLs sort as the largest value: last for
    ASC, first for DESC (DataFusion's default, ``order_cmp``)."""

    def key(v: Version) -> tuple[Any, ...]:
        row = full_row(table, v)
        out: list[Any] = []
        for col, desc in order_by:
            value = v.ordinal if col == SEQ else row[col]
            item = (value is None, 0 if value is None else value)
            out.append(_Desc(item) if desc else item)
        return tuple(out)

    return key


def _flush(state: ModelState, op: Flush) -> Prediction | OneOf:
    # KalamDB authorizes a statement before it looks at the table (flush_table.rs).
    if not perm.can_flush(state.catalog.role_of(op.actor)):
        return permission_denied(f"{op.actor} may not flush")
    table = state.catalog.tables.get(op.table_id)
    if table is None:
        return _missing_table(state, op.actor, op.table_id)
    if table.type is TableType.STREAM:
        return execution_error(
            "STREAM tables are never flushed", ContractItem.COLD_ARTIFACTS, "STREAM"
        )
    scopes = state.scopes(table.id).values()
    has_rows = any(pending(s) for s in scopes)
    running = any(j.table_id == table.id and not j.status.finished for j in state.jobs.values())
    if any(s.relearned for s in scopes):
        # Re-learned after a known finding: what the server still has to flush is unknown.
        return OneOf((FlushStarted(), FlushSkipped()))
    if not has_rows:
        # KalamDB keeps a scope whose only hot versions are tombstones "pending" (a flush
        # starts and writes nothing) while one that also flushed live rows is not: both are fine.
        if any(s.kept for s in scopes):
            return OneOf((FlushSkipped(), FlushStarted()))
        return FlushSkipped()
    if running:
        # The earlier job may have finished since the machine last looked.
        return OneOf((FlushStarted(), FlushSkipped()))
    return FlushStarted()


def _set_storage_writable(state: ModelState, storage_id: str, writable: bool) -> ModelState:
    """The fault injector changed a storage: jobs still running on it may meet either state."""
    broken = state.catalog.broken_storages
    broken = broken - {storage_id} if writable else broken | {storage_id}
    jobs = dict(state.jobs)
    for job_id, job in state.jobs.items():
        table = state.catalog.tables.get(job.table_id)
        if job.status.finished or table is None or table.storage_id != storage_id:
            continue
        if writable:
            jobs[job_id] = evolve(job, storage_was_writable=True)
        else:
            jobs[job_id] = evolve(job, storage_was_broken=True)
    return evolve(state, catalog=evolve(state.catalog, broken_storages=broken), jobs=jobs)


def _job_end(state: ModelState, op: JobFinished) -> Prediction | OneOf:
    job = state.jobs.get(op.job_id)
    if job is None:
        raise ModelError(f"unknown job {op.job_id}")
    table = state.catalog.tables.get(job.table_id)
    if table is None:
        return OneOf((JobEnds(JobStatus.CANCELLED), JobEnds(JobStatus.FAILED, True)))
    scopes = state.scopes(table.id).values()
    if any(s.relearned or s.kept for s in scopes) and not any(
        pending(s, job.requested_at) for s in scopes
    ):
        ran: tuple[JobEnds, ...] = (JobEnds(JobStatus.COMPLETED), JobEnds(JobStatus.SKIPPED))
    elif any(pending(s, job.requested_at) for s in scopes):
        ran = (JobEnds(JobStatus.COMPLETED),)
    elif any(pending(s) for s in scopes):
        ran = (JobEnds(JobStatus.COMPLETED), JobEnds(JobStatus.SKIPPED))
    else:
        ran = (JobEnds(JobStatus.SKIPPED),)
    if job.interrupted:
        return OneOf((*ran, JobEnds(JobStatus.FAILED)))
    if not job.storage_was_broken:
        return ran[0] if len(ran) == 1 else OneOf(ran)

    def writes(cut: int) -> bool:
        return any(len(flush_scope(table, s, cut).cold) > len(s.cold) for s in scopes)

    # The job took its rows at some cut between its request and now (writes in between may or
    # may not be in it). A flush with nothing to write (only tombstones of keys never flushed)
    # does not touch the storage, so a broken one cannot fail it; a later DELETE can turn a
    # cut that writes into one that does not, so every cut counts. When the storage was
    # writable for part of the job's life, the job may have written in that part.
    later = sorted(
        {v.ordinal for s in scopes for v in s.hot if job.requested_at < v.ordinal <= state.clock}
    )
    cuts = [writes(cut) for cut in (job.requested_at, *later)]
    if not any(cuts):
        return ran[0] if len(ran) == 1 else OneOf(ran)
    if all(cuts) and not job.storage_was_writable:
        return JobEnds(JobStatus.FAILED, message_required=True)
    return OneOf((JobEnds(JobStatus.FAILED, True), *ran))


def finish_job(state: ModelState, job_id: str, status: JobStatus) -> tuple[ModelState, ...]:
    """The states after the job ended with ``status``: for a completed flush, one per way the
    job may have cut each scope (it took a scope's hot versions when it read that scope, some
    time after it was requested and before it was seen finished)."""
    job = state.jobs[job_id]
    ended = evolve(job, status=status, finished_at=state.clock)
    done = evolve(state, jobs={**state.jobs, job_id: ended})
    table = state.catalog.tables.get(job.table_id)
    if job.interrupted and table is not None:
        # Whatever it reports, the job may have written some scopes' files (and left their hot
        # rows in place) before the crash: reads still predict every row, the tiers no longer.
        scopes = {k: evolve(s, relearned=True) for k, s in done.scopes(table.id).items()}
        return (evolve(done, data={**done.data, table.id: scopes}),)
    if status is not JobStatus.COMPLETED or table is None:
        return (done,)
    unsettled = frozenset(c.name for c in table.columns) ^ frozenset(job.columns)
    # The job reads one scope after another, so each scope has a cut of its own: a write to
    # one user's partition may have missed the job while a later one to another made it (one
    # cut for the whole table made a flaky 'row missing from batch-1.parquet' on a release
    # build). A cut falls between statements: each is one atomic write (KalamDB's
    # ``IndexedStore::insert_batch``: "single atomic batch write for all entities").
    variants: list[dict[ScopeKey, Scope]] = [{}]
    for k, s in done.scopes(table.id).items():
        later = sorted(
            {state.seqs.atom(v.ordinal)[1] for v in s.hot if v.ordinal > job.requested_at}
        )
        options: list[Scope] = []
        for cut in [job.requested_at, *later]:
            options += [a for a in _after_flush(table, s, cut, unsettled) if a not in options]
        variants = [{**v, k: a} for v in variants for a in options]
    out = [evolve(done, data={**done.data, table.id: v}) for v in variants]
    return tuple(out)


def _after_flush(table: Table, scope: Scope, cut: int, unsettled: frozenset[str]) -> list[Scope]:
    """The scope after a completed flush, one per way KalamDB's SHARED cold cleanup went.

    After a flush that leaves a SHARED table without live rows, KalamDB may (asynchronously,
    when a permit is free) empty its cold tier: until the next flush the model keeps that open,
    and the next flush wrote on whichever tier the cleanup left."""
    before = [scope, cleared(scope)] if scope.clearable else [scope]
    out = []
    for b in before:
        after = evolve(flush_scope(table, b, cut, unsettled), clearable=False)
        # The cleanup looks when the job ends, which may be before writes the model saw later:
        # without live rows at the cut, or now, the table may have been emptied.
        at_cut = evolve(after, hot=tuple(v for v in after.hot if v.ordinal <= cut))
        if table.type is TableType.SHARED and not (at_cut.live(table) and after.live(table)):
            after = evolve(after, clearable=True)
        if after not in out:
            out.append(after)
    return out


# --- DDL --------------------------------------------------------------------------------------


def _ddl(state: ModelState, op: Operation) -> tuple[Prediction | OneOf, ModelState]:
    cat = state.catalog
    if isinstance(op, CreateNamespace | CreateUser | CreateStorage):
        role = cat.role_of(op.actor)
        if not perm.can_manage(role):
            return permission_denied(f"{role.value} may not {type(op).__name__}"), state
        if isinstance(op, CreateNamespace):
            if op.namespace in cat.namespaces:
                return _exists(op.namespace), state
            return Ok(), evolve(state, catalog=cat.with_namespace(op.namespace))
        if isinstance(op, CreateUser):
            if op.user_id in cat.users:
                return _exists(op.user_id), state
            return Ok(), evolve(state, catalog=cat.with_user(User(op.user_id, op.role)))
        if op.storage_id in cat.storages:
            return _exists(op.storage_id), state
        storage = Storage(op.storage_id, op.base_directory, op.shared_template, op.user_template)
        return Ok(), evolve(state, catalog=cat.with_storage(storage))
    if isinstance(op, CreateTable):
        return _create_table(state, op)
    assert isinstance(op, DropTable | AlterAddColumn | AlterDropColumn)
    table = cat.tables.get(op.table_id)
    if table is None:
        return _missing_table(state, op.actor, op.table_id), state
    role = cat.role_of(op.actor)
    if isinstance(op, DropTable):
        if not perm.can_drop_table(role):
            return permission_denied(f"{role.value} may not DROP TABLE"), state
        subs = {
            k: evolve(s, active=False) if s.table_id == table.id else s
            for k, s in state.subs.items()
        }
        data = {k: v for k, v in state.data.items() if k != table.id}
        directory = cat.storages[table.storage_id].table_directory(table)
        catalog = evolve(cat.without_table(table.id), dropped_dirs=cat.dropped_dirs | {directory})
        return Ok(), evolve(state, catalog=catalog, data=data, subs=subs)
    if not perm.can_alter_table(role, table, op.actor):
        # who created it is in the report; a summary without names is one signature per cause
        return permission_denied(
            f"{role.value} may not ALTER a table another account created"
        ), state
    if isinstance(op, AlterAddColumn):
        if table.column(op.column.name) is not None or op.column.name in table.system_columns:
            return _exists(op.column.name, ContractItem.SCHEMA_EVOLUTION), state
        if op.column.primary_key or (not op.column.nullable and op.column.default is None):
            raise ModelError("ADD COLUMN must be nullable or have a default")
        new = table.add_column(op.column)
    else:
        col = table.column(op.column)
        if col is None:
            bad = _unknown_columns(state, table, [op.column], op.actor)
            assert bad is not None
            return bad, state
        if col.primary_key:
            return (
                execution_error("DROP COLUMN of the primary key", ContractItem.SCHEMA_EVOLUTION),
                state,
            )
        new = table.drop_column(op.column)
    # The contract does not say how a live subscription follows a schema change; the model
    # stops predicting it and the machines resubscribe (docs/contract.md).
    subs = {
        k: evolve(s, active=False) if s.table_id == table.id else s for k, s in state.subs.items()
    }
    return Ok(), evolve(state, catalog=cat.with_table(new), subs=subs)


def _exists(name: str, item: ContractItem = ContractItem.TIERS) -> Rejected:
    return execution_error(f"{name} already exists", item, "already exists", kept=True)


def _create_table(state: ModelState, op: CreateTable) -> tuple[Prediction | OneOf, ModelState]:
    cat = state.catalog
    t = op.table
    role = cat.role_of(op.actor)
    if not perm.can_create_table(role, t.type):
        return permission_denied(f"{role.value} may not create {t.type.value} tables"), state
    if t.id.namespace not in cat.namespaces:
        return execution_error("namespace missing", ContractItem.TIERS, "does not exist"), state
    if t.id in cat.tables:
        return _exists(str(t.id)), state
    if t.storage_id not in cat.storages:
        return execution_error("unknown storage", ContractItem.STORAGE_ROUTING), state
    if (t.type is TableType.STREAM) != (t.ttl_seconds is not None):
        return execution_error(
            "TTL_SECONDS is for STREAM tables only", ContractItem.STREAM_TTL, "TTL_SECONDS"
        ), state
    if t.access_level is not None and t.type is not TableType.SHARED:
        return execution_error("ACCESS_LEVEL is for SHARED tables only", ContractItem.RBAC), state
    if sum(c.primary_key for c in t.columns) != 1:
        raise ModelError("tables need exactly one primary key column")
    return Ok(), evolve(
        state,
        catalog=cat.with_table(evolve(t, schema_version=1, dropped=frozenset(), owner=op.actor)),
    )


# --- subscriptions ----------------------------------------------------------------------------


def _ws_error(code: str, item: ContractItem, reason: str) -> Rejected:
    return Rejected(frozenset({code}), None, item, reason)


def _subscribe(
    state: ModelState, op: Subscribe, at: Window | None
) -> tuple[Prediction | OneOf, ModelState]:
    table = state.catalog.tables.get(op.table_id)
    if table is None:
        return _ws_error("NOT_FOUND", ContractItem.SUBSCRIPTIONS, "no such table"), state
    role = state.catalog.role_of(op.actor)
    if not perm.can_subscribe(role, table):
        return _ws_error("UNAUTHORIZED", ContractItem.RBAC, f"{role.value} may not read"), state
    if op.projection is not None and {SEQ, DELETED} & set(op.projection):
        return _ws_error("INVALID_SQL", ContractItem.SUBSCRIPTIONS, "system column"), state
    names = set(op.projection or ()) | columns(op.where)
    if any(not table.knows(n) for n in names):
        return (
            _ws_error("SUBSCRIPTION_FAILED", ContractItem.SCHEMA_EVOLUTION, "unknown column"),
            state,
        )
    if op.projection is not None and table.pk.name not in op.projection:
        raise ModelError("a subscription's projection must include the primary key")
    key = state.scope_key(table, op.actor)
    sub = Subscription(
        op.sub_id,
        op.actor,
        table.id,
        op.projection,
        op.where,
        op.batch_size,
        op.from_seq,
        opened_at=state.clock,
        schema=table,
    )
    rows = []
    where = _matcher(op.where, table, state)
    for v, opt in _candidates(state, table, key, None, at):
        if not where(v):
            continue
        if op.from_seq is not None:
            after = state.seqs.after(v.ordinal, op.from_seq)
            if after is None:
                raise ModelError("resume point is not ordered against every row's _seq yet")
            if not after:
                continue
        rows.append(snapshot_row(table, sub, key, v, opt))
    sub = evolve(sub, snapshot=tuple(rows))
    return Subscribed(op.sub_id), evolve(state, subs={**state.subs, op.sub_id: sub})


# --- entry point ------------------------------------------------------------------------------


def execute(
    state: ModelState, op: Operation, at: Window | None = None
) -> tuple[Prediction | OneOf, ModelState]:
    """The prediction for ``op`` and the state after it succeeds (unchanged if it must fail)."""
    if isinstance(op, Insert):
        return _insert(state, op, at)
    if isinstance(op, Update):
        return _update(state, op)
    if isinstance(op, Delete):
        return _delete(state, op, at)
    if isinstance(op, Select):
        return _select(state, op, at), state
    if isinstance(op, Join):
        return _join(state, op, at), state
    if isinstance(op, Flush):
        return _flush(state, op), state
    if isinstance(op, JobFinished):
        return _job_end(state, op), state
    if isinstance(op, Subscribe):
        return _subscribe(state, op, at)
    if isinstance(op, Unsubscribe):
        subs = dict(state.subs)
        if op.sub_id in subs:
            subs[op.sub_id] = evolve(subs[op.sub_id], active=False)
        return Ok(), evolve(state, subs=subs)
    if isinstance(op, Restart):
        jobs = {
            i: j if j.status.finished else evolve(j, interrupted=True)
            for i, j in state.jobs.items()
        }
        return Ok(), evolve(state, restarted_at=state.clock, jobs=jobs)
    if isinstance(op, SetStorageWritable):
        return Ok(), _set_storage_writable(state, op.storage_id, op.writable)
    if isinstance(op, Transaction | TxBegin):
        from kalamfuzz.model import transactions  # it builds on this module

        if isinstance(op, TxBegin):
            return Ok(), transactions.begin(state, op)
        return transactions.run(state, op, at)
    return _ddl(state, op)


def _join(state: ModelState, op: Join, at: Window | None) -> Prediction | OneOf:
    """Each side is what the actor's SELECT * of it returns (the same access rules); rows pair
    where the ON columns are equal and not NULL. A row of a side that may or may not be there
    (at its TTL boundary) makes its pairs optional."""
    sides = []
    for tid in (op.left, op.right):
        pred = _select(state, Select(op.actor, tid, limit=MAX_QUERY_LIMIT), at)
        if not isinstance(pred, QueryResult):
            return pred
        if pred.count is not None:
            raise ModelError(f"a JOIN side ({tid}) has more than {MAX_QUERY_LIMIT} rows")
        sides.append([(r.resolve(state.seqs)[0], r.optional) for r in pred.rows])
    (left, right), (a, b) = sides, op.on
    rows = tuple(
        ExpectedRow(
            values={f"{side}_{c}": (lv if side == "l" else rv)[c] for side, c in op.columns},
            seq_of=None,
            scope=None,
            key=None,
            optional=lo or ro,
        )
        for lv, lo in left
        for rv, ro in right
        if lv.get(a) is not None and lv.get(a) == rv.get(b)
    )
    return QueryResult(op.output(), rows)


def subscription_view(state: ModelState, sub: Subscription) -> list[ExpectedRow]:
    """The subscription's query result now, as a client applying its stream must hold it.

    TTL expiry sends no change, so a STREAM client keeps the events it was sent (snapshot and
    later inserts) until they are hard-deleted; a snapshot row at its TTL boundary is optional.
    """
    table = state.catalog.table(sub.table_id)
    key = state.scope_key(table, sub.user_id)
    scope = state.scope(table.id, key)
    where = _matcher(sub.where, table, state)
    if table.type is TableType.STREAM:
        sent = {r.seq_of: r.optional for r in sub.snapshot}
        return [
            snapshot_row(table, sub, key, v, sent.get(v.ordinal, False))
            for v in scope.hot
            if (v.ordinal in sent or v.ordinal > sub.opened_at) and where(v)
        ]
    return [snapshot_row(table, sub, key, v) for v in scope.live(table) if where(v)]


def job_for(state: ModelState, job_id: str, table_id: TableId) -> ModelState:
    table = state.catalog.tables.get(table_id)
    broken = table is not None and table.storage_id in state.catalog.broken_storages
    job = Job(
        job_id,
        table_id,
        state.clock,
        storage_was_broken=broken,
        storage_was_writable=not broken,
        columns=tuple(c.name for c in table.columns) if table is not None else (),
    )
    return evolve(state, jobs={**state.jobs, job_id: job})


__all__ = [
    "DEFAULT_QUERY_LIMIT",
    "MAX_QUERY_LIMIT",
    "ModelState",
    "execute",
    "finish_job",
    "job_for",
    "projected_columns",
    "subscription_view",
]
