"""The history checker against brute force: on random histories of a two-key register (reads,
writes, compare-and-sets, lost replies), it explains exactly the histories some order that
keeps real time explains, and returns exactly the states those orders leave."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kalamfuzz.history import Call, Explained, History, Unexplained, check, memoized
from kalamfuzz.history.render import lanes, witness
from kalamfuzz.model.rows import Window

AT = Window(0, 0)
State = tuple[int, int]


def step(state: Any, call: Call, point: int) -> list[Any]:
    kind, key, a, b = call.op  # type: ignore[misc]
    out = call.outcome
    if kind == "w":
        return [_set(state, key, a)]
    if kind == "r":
        return [state] if out is None or out == state[key] else []
    # compare-and-set: True when it swapped
    swapped = state[key] == a
    if out is not None and out != swapped:
        return []
    return [_set(state, key, b) if swapped else state]


def _set(state: State, key: int, value: int) -> State:
    return (value, state[1]) if key == 0 else (state[0], value)


def touches(call: Call) -> frozenset[Any]:
    return frozenset({("t", None, call.op[1])})  # type: ignore[index]


def one(_: Call) -> int:
    return 1


@st.composite
def histories(draw: st.DrawFn) -> History:
    n = draw(st.integers(1, 6))
    calls = []
    for i in range(n):
        kind = draw(st.sampled_from("wrc"))
        key = draw(st.integers(0, 1))
        a, b = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        start = draw(st.integers(0, 10))
        end = None if draw(st.integers(0, 4)) == 0 else start + draw(st.integers(0, 6))
        outcome: object = None
        if end is not None and kind == "r":
            outcome = draw(st.integers(0, 2))
        if end is not None and kind == "c":
            outcome = draw(st.booleans())
        calls.append(
            Call(i, f"c{i}", (kind, key, a, b), start, end, outcome, AT)  # type: ignore[arg-type]
        )
    return History(tuple(calls))


def brute_force(history: History) -> set[State]:
    calls = history.calls
    must = [c for c in calls if c.completed_ns is not None]
    optional = [c for c in calls if c.completed_ns is None]
    finals: set[State] = set()
    for k in range(len(optional) + 1):
        for extra in itertools.combinations(optional, k):
            for order in itertools.permutations([*must, *extra]):
                if any(b.before(a) for i, a in enumerate(order) for b in order[i + 1 :]):
                    continue
                states: list[State] = [(0, 0)]
                for c in order:
                    states = [n for s in states for n in step(s, c, 0)]
                finals.update(states)
    return finals


@settings(max_examples=400, deadline=None)
@given(histories())
def test_explains_exactly_what_some_order_explains(history: History) -> None:
    verdict = check([(0, 0)], history, step, one, touches, key=hash)  # type: ignore[list-item,arg-type]
    expected = brute_force(history)
    if expected:
        assert isinstance(verdict, Explained), (verdict, expected)
        assert set(verdict.states) == expected  # type: ignore[arg-type]
    else:
        assert isinstance(verdict, Unexplained), verdict


def test_a_lost_increment_is_unexplained_and_the_witness_is_the_three_replies() -> None:
    # two clients read 0 and both compare-and-set 0 -> 1; both say they swapped
    calls = (
        Call(0, "a", ("c", 0, 0, 1), 0, 10, True, AT),  # type: ignore[arg-type]
        Call(1, "b", ("c", 0, 0, 1), 1, 11, True, AT),  # type: ignore[arg-type]
        Call(2, "x", ("w", 1, 2, 0), 2, 3, None, AT),  # type: ignore[arg-type]
        Call(3, "after", ("r", 0, 0, 0), 20, 21, 1, AT),  # type: ignore[arg-type]
    )
    history = History(calls)
    verdict = check([(0, 0)], history, step, one, touches, key=hash)  # type: ignore[list-item,arg-type]
    assert isinstance(verdict, Unexplained)
    assert verdict.calls == (0, 1, 3)  # the write to key 1 is a part of its own

    def recheck(h: History) -> Any:
        return check([(0, 0)], h, step, one, touches, key=hash)  # type: ignore[list-item,arg-type]

    # the read after is not needed: the two swaps of one value cannot both succeed
    assert witness(history, verdict, recheck) == (0, 1)
    drawn = lanes(history, (0, 1))
    assert drawn[0].startswith("* #1 a") and drawn[2].startswith("  #3 x")
    assert "[" in drawn[3] and "]" in drawn[3]


@settings(max_examples=200, deadline=None)
@given(histories(), st.data())
def test_a_memoized_step_gives_every_recheck_the_same_verdict(
    history: History, data: st.DataObject
) -> None:
    # the witness search rechecks one history with replies weakened, one at a time
    calls = 0

    def counted(state: Any, call: Call, point: int) -> list[Any]:
        nonlocal calls
        calls += 1
        return step(state, call, point)

    remembered = memoized(counted)  # type: ignore[arg-type]
    weak = data.draw(st.sets(st.integers(0, len(history) - 1)))
    for h in (history, history.weakened(sorted(weak)), history):
        plain = check([(0, 0)], h, step, one, touches, key=hash)  # type: ignore[list-item,arg-type]
        again = check([(0, 0)], h, remembered, one, touches, key=hash)  # type: ignore[list-item]
        assert again == plain
    stepped = calls
    check([(0, 0)], history, remembered, one, touches, key=hash)  # type: ignore[list-item]
    assert calls == stepped  # a history checked before takes no new step


# --- two points: a read-then-write that takes its snapshot first and commits later ----------

Snap = tuple[int, int, tuple[tuple[int, int], ...]]


def step2(state: Any, call: Call, point: int) -> list[Any]:
    """'c' reads its key at point 0 and, at point 1, writes b if what it read was a (a
    compare-and-set split in two, as a transaction's snapshot and commit); the rest as above."""
    kind, key, a, b = call.op  # type: ignore[misc]
    x, y, snaps = state
    if kind != "c":
        return [(*n, snaps) for n in step((x, y), call, point)]
    if point == 0:
        return [(x, y, (*snaps, (call.index, (x, y)[key])))]
    read = dict(snaps)[call.index]
    swapped = read == a
    out = call.outcome
    if out is not None and out != swapped:
        return []
    rest = tuple(p for p in snaps if p[0] != call.index)
    return [(*_set((x, y), key, b), rest) if swapped else (x, y, rest)]


def two(call: Call) -> int:
    return 2 if call.op[0] == "c" else 1  # type: ignore[index]


def brute_force2(history: History) -> set[State]:
    calls = history.calls
    finals: set[State] = set()

    def extend(order: list[tuple[int, int]], placed: dict[int, int], state: Any) -> None:
        if all(placed[c.index] == two(c) or c.completed_ns is None for c in calls):
            finals.add((state[0], state[1]))
        for c in calls:
            p = placed[c.index]
            if p == two(c) or any(
                d.before(c) and placed[d.index] < two(d) for d in calls if d is not c
            ):
                continue
            for s in step2(state, c, p):
                extend([*order, (c.index, p)], {**placed, c.index: p + 1}, s)

    extend([], {c.index: 0 for c in calls}, (0, 0, ()))
    return finals


@settings(max_examples=300, deadline=None)
@given(histories())
def test_two_point_calls_explain_exactly_what_brute_force_does(history: History) -> None:
    """The snapshots placed in one order only (rising call index when adjacent) lose nothing."""
    verdict = check([(0, 0, ())], history, step2, two, touches, key=hash)  # type: ignore[list-item,arg-type]
    expected = brute_force2(history)
    if expected:
        assert isinstance(verdict, Explained), (verdict, expected)
        assert {(s[0], s[1]) for s in verdict.states} == expected  # type: ignore[index]
    else:
        assert isinstance(verdict, Unexplained), verdict
