"""Does some order of the calls, one that keeps real time, explain every reply?

Knossos's configuration sets over the model's own states: a configuration is a model state and
how far each call has been placed; placing a call runs the sequential model (``step``) and keeps
only successors that agree with what the call was told. Every configuration in which all
answered calls are placed is a possible present, and all of them are returned: the example goes
on from every state the history allows, and later reads and subscribers decide among them.

A call may take more than one point: a transaction takes its snapshot at one point and commits at
a later one (snapshot isolation), both inside its request window.

Calls that touch different rows commute, so a history splits into independent parts (Herlihy and
Wing's locality): each part is searched on its own, one after the other, and real time is kept
within a part. That keeps k writes to k different rows at one order instead of k!.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from attrs import frozen

from kalamfuzz.history.record import Call, History
from kalamfuzz.model.state import ModelState

#: Placing one point of a call in a state: the successors that agree with its reply (empty:
#: the call cannot come here).
Step = Callable[[ModelState, Call, int], Sequence[ModelState]]
#: What a call touches: objects (table, scope, key); a ``Whole`` object stands for every key of
#: its scope.
Touches = Callable[[Call], frozenset[Hashable]]


@frozen
class Whole:
    """Every row of a scope: a read or write whose WHERE names no keys."""

    table: str
    scope: str | None


#: Model steps one check may take before it gives up (Porcupine's timeout): a round of six
#: conflicting calls has 720 orders, most cut short by the first reply that disagrees.
STEP_BUDGET = 5000
#: More possible states than this after a round: the driver reads to decide first.
MAX_FINAL = 256


@frozen
class Explained:
    states: tuple[ModelState, ...]
    #: One order that explains everything: (call index, point) pairs.
    order: tuple[tuple[int, int], ...]
    steps: int


@frozen
class Unexplained:
    """No order explains the part ``calls``: ``longest`` is the longest order that does explain
    a prefix (Knossos's final path), after which none of ``stuck`` could come next."""

    calls: tuple[int, ...]
    longest: tuple[tuple[int, int], ...]
    stuck: tuple[int, ...]
    #: A state the longest order reaches: what the report's invariants judge the stuck call in.
    state: ModelState
    steps: int


@frozen
class Undecided:
    """The search ran out of budget before it could tell."""

    steps: int


Verdict = Explained | Unexplained | Undecided


def parts(history: History, touches: Touches) -> list[list[int]]:
    """The history's independent parts: calls joined when they touch a common object (or the
    same scope, where one of them touches all of it), in history order."""
    n = len(history)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[Hashable, int] = {}
    whole: dict[tuple[str, str | None], int] = {}
    keyed: dict[tuple[str, str | None], list[int]] = {}
    for call in history.calls:
        i = call.index
        for obj in touches(call):
            if isinstance(obj, Whole):
                scope = (obj.table, obj.scope)
                for j in keyed.get(scope, []):
                    parent[find(j)] = find(i)
                if scope in whole:
                    parent[find(whole[scope])] = find(i)
                whole[scope] = i
                continue
            assert isinstance(obj, tuple) and len(obj) == 3
            scope = (obj[0], obj[1])
            keyed.setdefault(scope, []).append(i)
            if scope in whole:
                parent[find(whole[scope])] = find(i)
            if obj in owner:
                parent[find(owner[obj])] = find(i)
            owner[obj] = i
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def check(
    initial: Sequence[ModelState],
    history: History,
    step: Step,
    points: Callable[[Call], int],
    touches: Touches,
    budget: int = STEP_BUDGET,
    key: Callable[[ModelState], Hashable] = lambda s: s.clock,
) -> Verdict:
    """Search every part in turn from the states the one before left. ``key``: a cheap
    summary of a state that equal states share (configurations are bucketed by it)."""
    states = tuple(initial)
    order: list[tuple[int, int]] = []
    steps = 0
    for part in parts(history, touches):
        found = _search(states, [history.calls[i] for i in part], step, points, budget - steps, key)
        steps += found.steps
        if not isinstance(found, Explained):
            return found if isinstance(found, Unexplained) else Undecided(steps)
        states = found.states
        order += found.order
    return Explained(states, tuple(order), steps)


def _search(
    initial: Sequence[ModelState],
    calls: Sequence[Call],
    step: Step,
    points: Callable[[Call], int],
    budget: int,
    key: Callable[[ModelState], Hashable],
) -> Verdict:
    n = len(calls)
    need = tuple(points(c) for c in calls)
    # Real time: calls[j] must be fully placed before any point of calls[i] when j's reply came
    # before i was sent.
    preds = [tuple(j for j in range(n) if calls[j].before(calls[i])) for i in range(n)]
    # Configurations seen, bucketed by a cheap key and compared with == inside a bucket
    # (ModelState is not hashable).
    seen: dict[tuple[object, ...], list[ModelState]] = {}
    finals: list[ModelState] = []
    first_order: list[tuple[int, int]] | None = None
    best: tuple[int, list[tuple[int, int]], tuple[int, ...], ModelState] | None = None
    steps = 0

    def done(progress: tuple[int, ...]) -> bool:
        return all(progress[i] == need[i] or calls[i].lost for i in range(n))

    def visit(
        state: ModelState, progress: tuple[int, ...], path: list[tuple[int, int]], snap: int
    ) -> None:
        """``snap``: the call whose snapshot was placed last, when nothing came after it (-1
        otherwise). Snapshots next to each other commute (taking one changes nothing), so they
        are placed in one order only: by call, rising."""
        nonlocal steps, first_order, best
        bucket = seen.setdefault((progress, snap, key(state)), [])
        if any(state == s for s in bucket):
            return
        bucket.append(state)
        if done(progress):
            if all(state != f for f in finals):
                finals.append(state)
            if first_order is None:
                first_order = list(path)
        stuck: list[int] = []
        for i in range(n):
            if progress[i] == need[i] or any(progress[j] < need[j] for j in preds[i]):
                continue
            point = progress[i]
            snapshot = point == 0 and need[i] == 2
            if snapshot and i < snap:
                continue
            if steps >= budget:
                raise _OutOfBudget
            steps += 1
            successors = step(state, calls[i], point)
            if not successors:
                stuck.append(i)
                continue
            nxt = (*progress[:i], point + 1, *progress[i + 1 :])
            for s in successors:
                visit(s, nxt, [*path, (calls[i].index, point)], i if snapshot else -1)
        depth = sum(progress)
        if stuck and (best is None or depth > best[0]):
            best = (depth, list(path), tuple(calls[i].index for i in stuck), state)

    try:
        for s in initial:
            visit(s, (0,) * n, [], -1)
    except _OutOfBudget:
        return Undecided(steps)
    if finals:
        assert first_order is not None
        return Explained(tuple(finals), tuple(first_order), steps)
    if best is None:  # every order ran out of calls to place before all were answered
        best = (0, [], (), initial[0])
    return Unexplained(tuple(c.index for c in calls), tuple(best[1]), best[2], best[3], steps)


class _OutOfBudget(Exception):
    pass


def memoized(step: Step) -> Step:
    """``step`` remembered by the identity of its state and call: the witness search rechecks
    one history dozens of times with one reply weakened each time, and every recheck walks
    the same states again (a planted race's shrink spent 61 of its 86 s there). Successors
    come back as the same objects, so a whole subtree is reused; states and calls are frozen,
    and each entry keeps its state and call alive, so an id is never reused while it counts."""
    memo: dict[tuple[int, int, int], tuple[ModelState, Call, Sequence[ModelState]]] = {}

    def remembered(state: ModelState, call: Call, point: int) -> Sequence[ModelState]:
        key = (id(state), id(call), point)
        hit = memo.get(key)
        if hit is None:
            hit = memo[key] = (state, call, step(state, call, point))
        return hit[2]

    return remembered
