"""What the machines draw: edge values are there, and rare, as their weights say."""

from __future__ import annotations

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from kalamfuzz.machines.strategies import EDGE_TEXTS, EDGE_WEIGHT, values_of
from kalamfuzz.model.values import ColType


def _share_of_edge_texts(examples: int = 1_500) -> tuple[float, set[str]]:
    drawn: list[str] = []

    @settings(max_examples=examples, database=None, phases=[Phase.generate], deadline=None)
    @given(st.lists(values_of(ColType.TEXT, nullable=False), min_size=4, max_size=4))
    def draw(values: list[str]) -> None:
        drawn.extend(values)

    draw()
    edges = [v for v in drawn if v in EDGE_TEXTS]
    return len(edges) / len(drawn), set(edges)


def test_edge_values_are_drawn_at_their_weight() -> None:
    # A strategy listed k times in one_of is one branch unless each copy is its own object:
    # the edge texts then came a third of the time, and crowded out the colliding small ones.
    share, seen = _share_of_edge_texts()
    expected = 1 / (EDGE_WEIGHT + 1)
    assert expected / 3 < share < expected * 2.5, share
    assert len(seen) >= len(EDGE_TEXTS) // 2  # and all kinds of them come
