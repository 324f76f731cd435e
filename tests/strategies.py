"""Shared Hypothesis strategies and a model-backed "correct server" for the self-tests.

``Echo`` turns the model's own predictions into the observations a correct server would
produce (with fabricated, increasing ``_seq`` values and wire encodings such as BIGINT as JSON
strings), so invariant tests can start from a passing observation and break one thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import strategies as st

from kalamfuzz.model import (
    AccessLevel,
    ColType,
    Column,
    CreateNamespace,
    CreateTable,
    CreateUser,
    Model,
    OneOf,
    QueryResult,
    Role,
    Select,
    Succeeded,
    Table,
    TableId,
    TableType,
    Window,
)
from kalamfuzz.model.results import ExpectedRow
from kalamfuzz.model.rows import ScopeKey
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.streams import make_seq
from kalamfuzz.model.subscriptions import page_sizes
from kalamfuzz.model.values import SEQ, Value
from kalamfuzz.model.where import (
    And,
    Between,
    Cmp,
    Col,
    InList,
    IsNull,
    Like,
    Lit,
    Not,
    Or,
    Pred,
)
from kalamfuzz.observations import (
    Batch,
    Change,
    ColdScopeObservation,
    Manifest,
    ManifestSegment,
    ParquetFile,
    QueryObservation,
    StorageListing,
    SubscriptionObservation,
)

BASE_MS = 1_760_000_000_000
NS = "app"
USERS = ("u1", "u2")
SERVICE = "svc"
STORAGE = "/data/storage"

# --- values and predicates ----------------------------------------------------------------------

ints = st.integers(-5, 5)
texts = st.text(alphabet="ab%_", max_size=3)
doubles = st.sampled_from([-1.5, 0.0, 2.25])


def values_of(ctype: ColType) -> st.SearchStrategy[Value]:
    base: st.SearchStrategy[Value]
    if ctype is ColType.TEXT:
        base = st.text(alphabet="abc", max_size=2)
    elif ctype is ColType.DOUBLE:
        base = doubles
    elif ctype is ColType.BOOLEAN:
        base = st.booleans()
    else:
        base = ints
    return st.one_of(st.none(), base)


#: The table the property tests use: an Int key plus one column of each kind.
COLUMNS = (
    Column("id", ColType.INT, nullable=False, primary_key=True),
    Column("n", ColType.BIGINT),
    Column("s", ColType.TEXT),
    Column("f", ColType.DOUBLE),
    Column("b", ColType.BOOLEAN),
)


def row_values() -> st.SearchStrategy[dict[str, Value]]:
    return st.fixed_dictionaries(
        {
            "n": values_of(ColType.BIGINT),
            "s": values_of(ColType.TEXT),
            "f": values_of(ColType.DOUBLE),
            "b": values_of(ColType.BOOLEAN),
        }
    )


def _leaf() -> st.SearchStrategy[Pred]:
    ops = st.sampled_from(["=", "<>", "<", "<=", ">", ">="])
    num = st.builds(Cmp, ops, st.just(Col("n")), st.builds(Lit, st.one_of(st.none(), ints)))
    key = st.builds(Cmp, ops, st.just(Col("id")), st.builds(Lit, ints))
    txt = st.builds(
        Cmp, ops, st.just(Col("s")), st.builds(Lit, st.text(alphabet="abc", max_size=2))
    )
    inl = st.builds(
        InList,
        st.just(Col("n")),
        st.lists(st.builds(Lit, st.one_of(st.none(), ints)), min_size=1, max_size=3).map(tuple),
        st.booleans(),
    )
    btw = st.builds(
        Between, st.just(Col("f")), st.builds(Lit, doubles), st.builds(Lit, doubles), st.booleans()
    )
    isn = st.builds(IsNull, st.sampled_from([Col("n"), Col("s"), Col("b")]), st.booleans())
    lik = st.builds(Like, st.just(Col("s")), texts, st.booleans())
    boo = st.builds(Cmp, st.just("="), st.just(Col("b")), st.builds(Lit, st.booleans()))
    # by key: what read-backs send, and what the model looks up instead of scanning
    kin = st.builds(
        InList,
        st.just(Col("id")),
        st.lists(st.builds(Lit, ints), min_size=1, max_size=3).map(tuple),
        st.booleans(),
    )
    kbt = st.builds(
        Between, st.just(Col("id")), st.builds(Lit, ints), st.builds(Lit, ints), st.booleans()
    )
    return st.one_of(num, key, txt, inl, btw, isn, lik, boo, kin, kbt)


def predicates() -> st.SearchStrategy[Pred]:
    return st.recursive(
        _leaf(),
        lambda inner: st.one_of(
            st.builds(And, inner, inner), st.builds(Or, inner, inner), st.builds(Not, inner)
        ),
        max_leaves=4,
    )


# --- a ready-made world -------------------------------------------------------------------------


def table(kind: TableType = TableType.USER, name: str = "t", **kw: object) -> Table:
    if kind is TableType.STREAM:
        kw.setdefault("ttl_seconds", 10)
    if kind is TableType.SHARED:
        kw.setdefault("access_level", AccessLevel.PUBLIC)
    return Table(TableId(NS, name), kind, COLUMNS, **kw)  # type: ignore[arg-type]


def world(*tables: Table) -> Model:
    """root, users u1/u2 (role user), svc (service), namespace app and the given tables."""
    m = Model.initial(STORAGE)
    m.apply(CreateNamespace("root", NS), Succeeded())
    for u in USERS:
        m.apply(CreateUser("root", u, Role.USER), Succeeded())
    m.apply(CreateUser("root", SERVICE, Role.SERVICE), Succeeded())
    for t in tables or (table(),):
        m.apply(CreateTable("root", t), Succeeded())
    return m


def seq_for(ordinal: int) -> int:
    """The ``_seq`` a correct server would give the ``ordinal``-th write (one per ms)."""
    return make_seq(BASE_MS + ordinal)


def at_ms(ms_after_base: int, width: int = 0) -> Window:
    return Window(BASE_MS + ms_after_base, BASE_MS + ms_after_base + width)


def wire(value: Value, ctype: ColType | None) -> object:
    """How the HTTP API encodes a cell: Int64 as a string."""
    if value is not None and ctype in (ColType.BIGINT,) and not isinstance(value, bool):
        return str(value)
    return value


class Echo:
    """Observations a correct server would produce for the model's current state."""

    @staticmethod
    def resolve(row: ExpectedRow) -> dict[str, Value]:
        out = dict(row.values)
        if row.seq_of is not None:
            if row.row_id:
                out["row_id"] = f"{row.scope}:{seq_for(row.seq_of)}"
            else:
                out[SEQ] = seq_for(row.seq_of)
        return out

    @classmethod
    def query(cls, model: Model, op: Select, at: Window | None = None) -> QueryObservation:
        pred = model.predict(op, at)
        if isinstance(pred, OneOf):
            pred = pred.options[0]  # the first possible state's answer
        assert isinstance(pred, QueryResult), pred
        state = model.states[0]
        tbl = state.catalog.table(op.table_id)
        rows = [cls.resolve(r) for r in pred.rows if not r.optional]
        if pred.count is not None:
            rows = [cls.resolve(r) for r in pred.rows][: pred.count]
        encoded = tuple(
            tuple(wire(r.get(c), tbl.type_of(c) if tbl.knows(c) else None) for c in pred.columns)
            for r in rows
        )
        return QueryObservation(200, pred.columns, encoded)

    @classmethod
    def subscription(cls, state: ModelState, sub_id: str) -> SubscriptionObservation:
        sub = state.subs[sub_id]
        snap = [cls.resolve(r) for r in sub.snapshot if not r.optional]
        batches = []
        pos = 0
        sizes = page_sizes(len(snap), sub.batch_size)
        for i, n in enumerate(sizes):
            rows = tuple(snap[pos : pos + n])
            pos += n
            last = i == len(sizes) - 1
            batches.append(
                Batch(
                    batch_num=i,
                    has_more=not last,
                    status="ready" if last else ("loading" if i == 0 else "loading_batch"),
                    last_seq_id=rows[-1][SEQ] if rows else None,  # type: ignore[arg-type]
                    rows=rows,
                    index=i,
                )
            )
        changes = tuple(
            Change(
                c.change_type.value,
                (cls.resolve(c.rows),) if c.rows else (),
                (cls.resolve(c.old_values),) if c.old_values else (),
                index=len(batches) + k,
            )
            for k, c in enumerate(x for x in sub.changes if not x.optional)
        )
        return SubscriptionObservation(sub_id, True, tuple(batches), changes)

    @classmethod
    def cold(cls, state: ModelState, table_id: TableId, scope: ScopeKey) -> ColdScopeObservation:
        exp = state.expected_cold(table_id, scope)
        files = []
        segments = []
        for seg in exp.segments:
            rows = tuple({**row, SEQ: seq_for(ordinal)} for row, ordinal in exp.files[seg.path])
            seqs = [seq_for(o) for _, o in exp.files[seg.path]]
            files.append(ParquetFile(seg.path, 100 + len(rows), rows))
            segments.append(ManifestSegment(seg.path, len(rows), min(seqs), max(seqs), "committed"))
        manifest = (
            Manifest(tuple(segments), exp.last_sequence_number) if segments or exp.cleared else None
        )
        return ColdScopeObservation(exp.directory, manifest, None, tuple(files))

    @staticmethod
    def listing(state: ModelState) -> StorageListing:
        from kalamfuzz.invariants.storage_routing import expected_files

        required, _ = expected_files(state)
        return StorageListing(tuple(sorted(required)))


def named(obs: QueryObservation) -> list[dict[str, object]]:
    return obs.named_rows()


def positional(
    columns: Sequence[str], rows: Sequence[Mapping[str, object]]
) -> tuple[tuple[object, ...], ...]:
    return tuple(tuple(r.get(c) for c in columns) for r in rows)
