"""The model as a set of possible server states (Jepsen's ``info``).

An operation whose outcome is unknown, a flush job whose start point is open, or a STREAM key
the server may or may not accept each fork the state; a later observation keeps only the states
it agrees with. :class:`Model` is the one mutable object the machines hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from attrs import define, evolve, frozen

from kalamfuzz.model.catalog import Role, Table, TableId, User
from kalamfuzz.model.concurrency import concurrent
from kalamfuzz.model.jobs import JobStatus
from kalamfuzz.model.ops import (
    AlterAddColumn,
    AlterDropColumn,
    DropTable,
    Flush,
    JobFinished,
    Operation,
    Select,
)
from kalamfuzz.model.outcomes import (
    Failed,
    FlushSkipped,
    FlushStarted,
    JobEnds,
    Ok,
    OneOf,
    Outcome,
    Prediction,
    Rejected,
    Subscribed,
    Succeeded,
    TxReply,
    Unknown,
)
from kalamfuzz.model.relearn import adopt, distrust_snapshot
from kalamfuzz.model.results import QueryResult
from kalamfuzz.model.rows import ScopeKey, SeqBook, Window
from kalamfuzz.model.state import ModelState, execute, finish_job, job_for
from kalamfuzz.model.values import ModelError, Row

#: Past this many possible states the driver reads what tells them apart (every scope, the cold
#: files) before the next step: flush jobs whose start is open fork once per write they may have
#: taken, per scope, and a few running side by side multiply.
DECIDE_AT = 16
#: Beyond this many the run has lost track (reads could not decide): the example errors.
MAX_STATES = 256


def options(pred: Prediction | OneOf) -> tuple[Prediction, ...]:
    return pred.options if isinstance(pred, OneOf) else (pred,)


def merge(preds: Iterable[Prediction | OneOf]) -> Prediction | OneOf:
    out: list[Prediction] = []
    for p in preds:
        for o in options(p):
            if o not in out:
                out.append(o)
    return out[0] if len(out) == 1 else OneOf(tuple(out))


def agrees(pred: Prediction, outcome: Outcome, seqs: SeqBook) -> bool:
    """Whether a single predicted outcome is consistent with what was seen."""
    if isinstance(outcome, Unknown):
        return True
    if isinstance(outcome, Failed):
        return isinstance(pred, Rejected) and outcome.code in pred.codes
    if isinstance(pred, Rejected):
        return False
    if isinstance(pred, Ok):
        return outcome.row_count is None or pred.count_ok(outcome.row_count)
    if isinstance(pred, QueryResult):
        if outcome.rows is None:
            return True
        if pred.count is not None and len(outcome.rows) != pred.count:
            return False
        return pred.compare(outcome.rows, seqs).ok
    if isinstance(pred, FlushStarted):
        return outcome.job_id is not None
    if isinstance(pred, FlushSkipped):
        return outcome.job_id is None
    if isinstance(pred, JobEnds):
        return outcome.job_status is None or outcome.job_status is pred.status
    if isinstance(pred, TxReply):
        return _reply_agrees(pred, outcome, seqs)
    return isinstance(pred, Subscribed)


def _reply_agrees(pred: TxReply, outcome: Succeeded, seqs: SeqBook) -> bool:
    if outcome.counts is not None and pred.counts is not None and outcome.counts != pred.counts:
        return False
    if outcome.selects is None or pred.selects is None:
        return True
    if len(outcome.selects) != len(pred.selects):
        return False
    return all(
        p is None or ((p.count is None or len(rows) == p.count) and p.compare(rows, seqs).ok)
        for p, rows in zip(pred.selects, outcome.selects, strict=True)
    )


def step(state: ModelState, op: Operation, outcome: Outcome, at: Window | None) -> list[ModelState]:
    """The states after ``op`` in ``state`` that agree with ``outcome`` (none: it cannot have
    happened here): the sequential spec, one operation at a time, for the history checker.
    An unknown outcome here means the operation took effect (it may also never have: the
    checker leaves it unplaced)."""
    pred, after = execute(state, op, at)
    if not any(agrees(p, outcome, state.seqs) for p in options(pred)):
        return []
    if isinstance(outcome, Unknown):
        return [state if all(isinstance(p, Rejected) for p in options(pred)) else after]
    return Model._successors(state, op, pred, after, outcome)


def _as_admin(s: ModelState, op: AlterAddColumn | AlterDropColumn | DropTable) -> ModelState:
    """``s`` after ``op`` made by a system account (``s`` if none could make it)."""
    admin = next((u.user_id for u in s.catalog.users.values() if u.role is Role.SYSTEM), None)
    if admin is None:
        return s
    pred, after = execute(s, evolve(op, actor=admin), None)
    return s if isinstance(pred, Rejected) else after


def _dedupe(states: Iterable[ModelState]) -> tuple[ModelState, ...]:
    out: list[ModelState] = []
    for s in states:
        if all(s != o for o in out):
            out.append(s)
    return tuple(out)


@frozen
class Fork:
    """One possible state and what an operation does there, executed once: the invariants judge
    the prediction, and ``Model.apply`` advances to ``after`` from the same fork."""

    state: ModelState
    prediction: Prediction | OneOf
    after: ModelState


@define
class Model:
    """The reference model the machines drive.

    ``predict`` before checking, ``apply`` after: the model never reads a clock, so every
    operation on a STREAM table passes the client-measured request window ``at``.
    """

    states: tuple[ModelState, ...]

    @classmethod
    def initial(cls, storage_base: str, root: str = "root", users: Iterable[User] = ()) -> Model:
        return cls((ModelState.initial(storage_base, root, users),))

    @property
    def state(self) -> ModelState:
        """The state, when only one is possible."""
        if len(self.states) != 1:
            raise ModelError(f"{len(self.states)} states are possible; read to decide first")
        return self.states[0]

    def table(self, table_id: TableId) -> Table | None:
        """The table's definition, for coercing observed rows (None if no state knows it)."""
        for s in self.states:
            table = s.catalog.tables.get(table_id)
            if table is not None:
                return table
        return None

    @property
    def certain(self) -> bool:
        return len(self.states) == 1

    @property
    def undecided(self) -> bool:
        """So many states are possible that a read should decide before the next step."""
        return len(self.states) > DECIDE_AT

    def predict(self, op: Operation, at: Window | None = None) -> Prediction | OneOf:
        return merge(f.prediction for f in self.run(op, at))

    def run(self, op: Operation, at: Window | None = None) -> tuple[Fork, ...]:
        """Execute ``op`` once in every possible state (in the order of ``states``)."""
        return tuple(Fork(s, *execute(s, op, at)) for s in self.states)

    def apply(
        self,
        op: Operation,
        outcome: Outcome,
        at: Window | None = None,
        forks: Sequence[Fork] | None = None,
    ) -> None:
        """Advance every possible state by what happened, keeping those that agree with it.

        ``forks``: ``run(op, at)`` already computed (for the invariants), so that a step
        executes the operation once per state."""
        if self.lost(getattr(op, "table_id", None)) and not isinstance(op, DropTable):
            return  # nothing is predicted about a lost table
        agreeing: list[ModelState] = []
        fallback: list[ModelState] = []
        for f in forks if forks is not None else self.run(op, at):
            s, pred = f.state, f.prediction
            ok = any(agrees(p, outcome, s.seqs) for p in options(pred))
            nexts = self._successors(s, op, pred, f.after, outcome)
            (agreeing if ok else fallback).extend(nexts)
        # When nothing agrees the invariants have reported a violation; keep every state so
        # the report stays about the first discrepancy rather than a model crash.
        states = _dedupe(agreeing or fallback)
        if len(states) > MAX_STATES:
            raise ModelError(f"{len(states)} possible states: read (SELECT, cold check) to decide")
        self.states = states

    @staticmethod
    def _successors(
        s: ModelState,
        op: Operation,
        pred: Prediction | OneOf,
        after: ModelState,
        outcome: Outcome,
    ) -> list[ModelState]:
        if isinstance(outcome, Unknown):
            # A flush whose reply was lost may have created a job nobody knows the id of; its
            # effects show up in cold reads only, which then stay unexplained.
            return [s] if isinstance(op, Flush) else [s, after]
        if isinstance(outcome, Failed):
            return [s]
        if isinstance(op, Flush):
            return [job_for(s, outcome.job_id, op.table_id) if outcome.job_id else s]
        if isinstance(op, JobFinished):
            status = outcome.job_status or JobStatus.COMPLETED
            return list(finish_job(s, op.job_id, status))
        if isinstance(op, Select):
            if outcome.rows is not None:
                for p in options(pred):
                    if isinstance(p, QueryResult):
                        return [s.learn(p.compare(outcome.rows, s.seqs).learned)]
            return [s]
        if all(isinstance(p, Rejected) for p in options(pred)):
            # A schema change the caller was denied but the server made anyway is the change
            # an admin would have made: what follows reads the new schema (without it, each
            # later read of the table is one more finding of the same cause). A write has no
            # such need: the driver re-learns its scope from a read.
            if isinstance(op, AlterAddColumn | AlterDropColumn | DropTable) and all(
                isinstance(p, Rejected) and p.codes == {"PERMISSION_DENIED"} for p in options(pred)
            ):
                return [_as_admin(s, op)]
            return [s]  # the server did something the model cannot describe
        return [after]

    def narrow(self, consistent: Sequence[int], learned: Mapping[int, int]) -> None:
        """Keep the states an observation agreed with (by index; all if none did) and bind the
        ``_seq`` values they agree on."""
        if consistent:
            self.states = tuple(self.states[i] for i in consistent)
        if learned:
            self.learn(learned)

    def keep(self, decide: Callable[[ModelState], bool]) -> None:
        """Keep the states an observation agrees with (all of them if none does)."""
        kept = tuple(s for s in self.states if decide(s))
        if kept:
            self.states = kept

    def abandon(self, table_id: TableId) -> None:
        """Stop predicting anything about a table (see ``Catalog.lost_tables``)."""
        self.states = tuple(
            evolve(s, catalog=evolve(s.catalog, lost_tables=s.catalog.lost_tables | {table_id}))
            for s in self.states
        )

    def lost(self, table_id: TableId | None) -> bool:
        return table_id is not None and table_id in self.states[0].catalog.lost_tables

    def adopt(self, table_id: TableId, key: ScopeKey, rows: Sequence[Row]) -> None:
        """Re-learn a scope from a full read of it (after a known finding)."""
        self.states = _dedupe(adopt(s, table_id, key, rows) for s in self.states)

    def concurrent(self, since: int) -> None:
        """What was written after ordinal ``since`` came from statements sent at once."""
        self.states = tuple(concurrent(s, since) for s in self.states)

    @property
    def clock(self) -> int:
        """The last ordinal written in every possible state."""
        return min(s.clock for s in self.states)

    def distrust_snapshot(self, sub_id: str) -> None:
        self.states = tuple(distrust_snapshot(s, sub_id) for s in self.states)

    def learn(self, learned: Mapping[int, int]) -> None:
        """Bind observed ``_seq`` values (ordinal -> seq) in every state."""
        self.states = tuple(s.learn(learned) for s in self.states)
