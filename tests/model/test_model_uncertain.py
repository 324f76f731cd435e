"""Unknown outcomes are kept as possible states until an observation decides."""

from __future__ import annotations

import pytest
from strategies import NS, Echo, world

from kalamfuzz.invariants.coerce import outcome
from kalamfuzz.model import (
    Failed,
    Insert,
    ModelError,
    Ok,
    OneOf,
    QueryResult,
    Rejected,
    Select,
    Succeeded,
    TableId,
    Unknown,
)
from kalamfuzz.model.jobs import JobStatus
from kalamfuzz.model.outcomes import FlushSkipped, FlushStarted, JobEnds, Subscribed
from kalamfuzz.model.rows import SeqBook
from kalamfuzz.model.uncertain import DECIDE_AT, MAX_STATES, agrees, merge

T = TableId(NS, "t")


def row(i):
    return {"id": i, "n": None, "s": None, "f": None, "b": None}


def keys(m):
    return sorted({tuple(sorted(r.key for r in s_pred.rows)) for s_pred in _preds(m)})


def _preds(m):
    pred = m.predict(Select("u1", T))
    return pred.options if isinstance(pred, OneOf) else (pred,)


class TestUnknown:
    def test_unknown_insert_forks_and_a_read_decides(self):
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Unknown())
        assert len(m.states) == 2 and not m.certain
        with pytest.raises(ModelError):
            m.state  # noqa: B018
        assert keys(m) == [(), (1,)]
        retry = m.predict(Insert("u1", T, (row(1),)))
        assert isinstance(retry, OneOf) and {type(o) for o in retry.options} == {Ok, Rejected}
        m.apply(Select("u1", T), Succeeded(rows=()))
        assert m.certain and keys(m) == [()]

    def test_the_retry_outcome_also_decides(self):
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Unknown())
        m.apply(Insert("u1", T, (row(1),)), Failed("SQL_EXECUTION_ERROR", 400))
        assert m.certain and keys(m) == [(1,)]

    def test_disagreeing_outcome_keeps_every_state(self):
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Unknown())
        m.apply(Select("u1", T), Succeeded(rows=({"id": 9},)))
        assert len(m.states) == 2

    def test_many_states_ask_for_a_read_before_the_limit(self):
        m = world()
        for i in range(DECIDE_AT.bit_length()):
            m.apply(Insert("u1", T, (row(i),)), Unknown())
        assert m.undecided and len(m.states) <= MAX_STATES
        m.apply(Select("u1", T), Succeeded(rows=()))
        assert m.certain and not m.undecided

    def test_state_explosion_is_refused(self):
        m = world()
        with pytest.raises(ModelError):
            for i in range(MAX_STATES.bit_length() + 1):
                m.apply(Insert("u1", T, (row(i),)), Unknown())

    def test_keep_never_empties_the_model(self):
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Unknown())
        m.keep(lambda s: False)
        assert len(m.states) == 2


class TestAgreement:
    def test_agrees_per_prediction_kind(self):
        seqs = SeqBook()
        assert agrees(Ok(2), Succeeded(row_count=2), seqs)
        assert not agrees(Ok(2), Succeeded(row_count=3), seqs)
        assert agrees(Ok(2, 3), Succeeded(), seqs)
        assert agrees(Ok(1, 3), Succeeded(row_count=3), seqs)
        assert not Ok(1).count_ok(None)
        rej = Rejected(frozenset({"X"}), 400, None, "r")  # type: ignore[arg-type]
        assert agrees(rej, Failed("X"), seqs) and not agrees(rej, Failed("Y"), seqs)
        assert not agrees(rej, Succeeded(), seqs) and not agrees(Ok(), Failed("X"), seqs)
        assert agrees(FlushStarted(), Succeeded(job_id="FL-1"), seqs)
        assert not agrees(FlushSkipped(), Succeeded(job_id="FL-1"), seqs)
        assert agrees(JobEnds(JobStatus.FAILED), Succeeded(job_status=JobStatus.FAILED), seqs)
        assert agrees(JobEnds(JobStatus.FAILED), Succeeded(), seqs)
        assert agrees(Subscribed("s"), Succeeded(), seqs)
        q = QueryResult(("id",), (), count=1)
        assert not agrees(q, Succeeded(rows=()), seqs) and agrees(q, Succeeded(), seqs)
        assert agrees(Ok(), Unknown(), seqs)

    def test_merge_flattens_and_dedupes(self):
        assert merge([Ok(), OneOf((Ok(), FlushSkipped()))]) == OneOf((Ok(), FlushSkipped()))
        assert merge([Ok(), Ok()]) == Ok()

    def test_echo_select_teaches_seqs(self):
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Succeeded())
        obs = Echo.query(m, Select("u1", T))
        m.apply(Select("u1", T), outcome(obs, m.state.catalog.table(T)))
        assert m.state.seqs.get(1) is not None
        m.apply(Select("u1", T), outcome(obs, None))
        assert m.table(T) is not None and m.table(TableId(NS, "zz")) is None
