"""Statements sent at once: the server commits them in an order the client cannot know."""

from __future__ import annotations

from attrs import evolve

from kalamfuzz.model.state import ModelState


def concurrent(state: ModelState, since: int) -> ModelState:
    """The versions written after ordinal ``since`` came from statements sent at once (each to
    rows of its own): they take ``_seq`` in any order among themselves, as one statement's
    rows do, and a subscriber may get their changes in any order (docs/contract.md)."""
    if state.clock <= since:
        return state
    subs = {
        sid: evolve(
            sub,
            changes=tuple(
                evolve(c, statement=since) if c.statement > since else c for c in sub.changes
            ),
        )
        for sid, sub in state.subs.items()
    }
    return evolve(state, seqs=state.seqs.unordered(since + 1, state.clock), subs=subs)
