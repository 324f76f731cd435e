from __future__ import annotations

from collections.abc import Iterator

import pytest

from kalamfuzz.machines import Driver


@pytest.fixture(scope="module")
def driver() -> Iterator[Driver]:
    """A driver on a plain sim, shared by a module's tests (each test begins its own example)."""
    with Driver.open("sim") as d:
        yield d


@pytest.fixture(scope="module")
def buggy() -> Iterator[Driver]:
    with Driver.open("sim", bugs=("cold_shadows_hot", "live_multi_insert_first_only")) as d:
        yield d
