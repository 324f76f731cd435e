"""Item 5: every forbidden action fails with PERMISSION_DENIED (or the documented code) and
every allowed action succeeds. That a refused action changed nothing is what later reads check:
the model did not change."""

from __future__ import annotations

from kalamfuzz.invariants.statements import check_statement
from kalamfuzz.invariants.violation import Violation
from kalamfuzz.model.ops import Operation
from kalamfuzz.model.outcomes import ContractItem, OneOf, Prediction
from kalamfuzz.model.state import ModelState
from kalamfuzz.observations import StatementObservation


def check(
    state: ModelState, op: Operation, pred: Prediction | OneOf, obs: StatementObservation
) -> list[Violation]:
    return [v for v in check_statement(state, op, pred, obs) if v.item is ContractItem.RBAC]
