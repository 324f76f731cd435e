"""Budgets parse the way users write them; failures group by what broke, not where."""

from __future__ import annotations

import pytest

from kalamfuzz.campaign.engine import Budget, signature
from kalamfuzz.errors import ConfigError, TargetUnreachable
from kalamfuzz.invariants.violation import Violation
from kalamfuzz.machines import InvariantViolation
from kalamfuzz.model import ContractItem


@pytest.mark.parametrize(
    ("text", "budget"),
    [
        ("10m", Budget(seconds=600)),
        ("90s", Budget(seconds=90)),
        ("1.5h", Budget(seconds=5400)),
        ("200", Budget(examples=200)),
        (" 7 ", Budget(examples=7)),
    ],
)
def test_budget_parses(text: str, budget: Budget) -> None:
    assert Budget.parse(text) == budget


@pytest.mark.parametrize("text", ["", "ten", "10x", "0", "2.5", "-3m"])
def test_bad_budget_names_the_fix(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        Budget.parse(text)
    assert "90s, 10m, 1h" in str(err.value) or "whole number" in str(err.value)


def _violation(summary: str, subject: str) -> InvariantViolation:
    return InvariantViolation([Violation(ContractItem.TIERS, subject, summary)], "SELECT")


def test_signature_ignores_subjects_and_names() -> None:
    a = _violation("SELECT result differs from the model", "table kf_1.notes scope u1")
    b = _violation("SELECT result differs from the model", "table kf_9.board")
    c = _violation("wrong result", "table kf_1.notes")
    assert signature(a) == signature(b) != signature(c)


def test_signature_ignores_ids_and_counts_in_summaries() -> None:
    # Shrinking renumbers steps, so a subscription's id and a row count change with it.
    a = _violation("2 rows of other users visible in subscription s1-9", "table kf_1.notes")
    b = _violation("1 rows of other users visible in subscription s1-3", "table kf_2.notes")
    c = _violation("1 rows of other users visible in snapshot of s1-3", "table kf_2.notes")
    assert signature(a) == signature(b) != signature(c)


def test_error_signature_drops_ids_and_numbers() -> None:
    a = TargetUnreachable("cannot connect to http://127.0.0.1:40111: refused")
    b = TargetUnreachable("cannot connect to http://127.0.0.1:40999: refused")
    assert signature(a) == signature(b)
    assert signature(a).startswith("TargetUnreachable: ")
