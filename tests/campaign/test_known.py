"""Known findings: the file format (bad input names the fix) and the triage the driver asks."""

from __future__ import annotations

from pathlib import Path

import pytest

from kalamfuzz.campaign.known import DEFAULT_FILE, KnownIssues, Triage
from kalamfuzz.errors import ConfigError
from kalamfuzz.invariants.violation import Violation
from kalamfuzz.model import ContractItem

ORDER = Violation(ContractItem.TIERS, "table app.t", "SELECT rows out of ORDER BY order")
COUNT = Violation(ContractItem.TIERS, "Delete by u on app.t", "DELETE affected 0 rows, not 2")

GOOD = """
[[issue]]
id = "order-by-limit-resorted"
title = "ORDER BY ... LIMIT returns rows re-sorted by key"
status = "open"
signature = "2 correct before/during/after flush: SELECT rows out of ORDER BY order"
where = "LIMIT"
report = "regressions/kalamdb/x.md"

[[issue]]
id = "dml-blind-after-restart"
title = "DELETE after a restart misses hot rows"
status = "open"
signature = ["2 correct before/during/after flush: DELETE affected # rows, not #"]
after = ["crash"]

[[issue]]
id = "fixed-one"
title = "fixed upstream"
status = "fixed"
signature = "4 subscriptions: anything"
"""


def _load(tmp_path: Path, text: str) -> KnownIssues:
    path = tmp_path / "known.toml"
    path.write_text(text)
    return KnownIssues.load(path)


def test_signatures_mask_numbers_and_ids() -> None:
    assert COUNT.signature == "2 correct before/during/after flush: DELETE affected # rows, not #"


def test_an_open_issue_matches_its_signature_where_and_faults(tmp_path: Path) -> None:
    known = _load(tmp_path, GOOD)
    triage = Triage(known)
    assert triage(ORDER, "SELECT id FROM app.t ORDER BY id DESC LIMIT 2", frozenset()) == (
        "order-by-limit-resorted"
    )
    assert triage(ORDER, "SELECT id FROM app.t ORDER BY id DESC", frozenset()) is None
    assert triage(COUNT, "DELETE FROM app.t WHERE n IS NULL", frozenset()) is None
    assert triage(COUNT, "DELETE FROM app.t WHERE n IS NULL", frozenset({"crash"})) == (
        "dml-blind-after-restart"
    )
    assert known.by_id("order-by-limit-resorted").report == "regressions/kalamdb/x.md"


def test_a_symptom_matches_under_any_contract_item_after_the_cause(tmp_path: Path) -> None:
    # One cause, met first by whichever check reads what it broke: a DML count under item 2,
    # or under item 6 when a flush had failed before, or item 7 after a DROP COLUMN.
    known = _load(
        tmp_path,
        """
[[issue]]
id = "dml-blind-after-restart"
title = "After a restart, UPDATE and DELETE miss hot rows"
status = "open"
symptom = "^(UPDATE|DELETE) affected (another number of|fewer) rows than the model"
after = ["crash"]
""",
    )
    triage, crash = Triage(known), frozenset({"crash"})
    for item, summary in [
        (ContractItem.TIERS, "DELETE affected another number of rows than the model"),
        (
            ContractItem.IDEMPOTENCY,
            "UPDATE affected fewer rows than the model after a failed flush",
        ),
        (ContractItem.SCHEMA_EVOLUTION, "UPDATE affected another number of rows than the model"),
    ]:
        v = Violation(item, "Update by u on app.t", summary)
        assert triage(v, "UPDATE app.t SET n = 1", crash) == "dml-blind-after-restart", v
        assert triage(v, "UPDATE app.t SET n = 1", frozenset()) is None, "needs its cause"
    other = Violation(ContractItem.TIERS, "table app.t", "SELECT result differs from the model")
    assert triage(other, "SELECT * FROM app.t", crash) is None


def test_a_fixed_issue_is_a_new_finding_again(tmp_path: Path) -> None:
    known = _load(tmp_path, GOOD)
    gone = Violation(ContractItem.SUBSCRIPTIONS, "subscription s1", "anything")
    assert Triage(known)(gone, "", frozenset()) is None


def test_a_finding_saved_earlier_in_the_campaign_is_known() -> None:
    triage = Triage()
    assert triage(ORDER, "", frozenset()) is None
    triage.seen.add(ORDER.signature)
    assert triage(ORDER, "", frozenset()) == ORDER.signature


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[[issue]\nid=", "not valid TOML"),
        ('[[issue]]\nid = "a"\ntitle = "t"\nstatus = "open"\n', "'signature' is missing"),
        ('[[issue]]\nid = "a"\ntitle = "t"\nstatus = "maybe"\nsignature = "s"\n', "status"),
        (
            '[[issue]]\nid = "a"\ntitle = "t"\nstatus = "open"\nsignature = "s"\nwhere = "("\n',
            "regex",
        ),
        (
            '[[issue]]\nid = "a"\ntitle = "t"\nstatus = "open"\nsymptom = ["ok", "(x"]\n',
            "'symptom' is not a regex",
        ),
        ('[[issue]]\nid = "a"\ntitle = "t"\nstatus = "open"\nsymptom = 3\n', "signature"),
        (
            '[[issue]]\nid = "a"\ntitle = "t"\nstatus = "open"\nsignature = "s"\nafter = ["x"]\n',
            "after",
        ),
        (
            '[[issue]]\nid = "a"\ntitle = "t"\nstatus = "open"\nsignature = "s"\ncolour = 1\n',
            "unknown key",
        ),
        (
            '[[issue]]\nid = "a"\ntitle = "t"\nstatus = "open"\nsignature = "s"\n' * 2,
            "two issues have id",
        ),
    ],
)
def test_a_bad_file_is_one_line_naming_the_fix(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_missing_file_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        KnownIssues.load(tmp_path / "nope.toml")
    assert "--known-issues" in str(err.value)


def test_the_checked_in_file_loads() -> None:
    path = Path(__file__).parents[2] / "regressions" / "known-issues.toml"
    known = KnownIssues.load(path)
    assert known.issues and all(k.report for k in known.issues if k.open)


def test_the_stream_delete_bug_is_known_only_on_the_stream_table_after_a_repeated_key() -> None:
    issues = KnownIssues.load(Path(__file__).resolve().parents[2] / DEFAULT_FILE)
    sig = "2 correct before/during/after flush: SELECT result differs from the model"
    repeated = frozenset({"stream-key-repeated"})

    def known(signature: str, where: str, events: frozenset[str]) -> set[str]:
        return {i.id for i in issues.issues if i.matches(signature, where, events)}

    assert "stream-delete-by-key" in known(sig, "SELECT * FROM kf_1_2.events", repeated)
    assert "stream-delete-by-key" not in known(sig, "SELECT * FROM kf_1_2.events", frozenset())
    assert "stream-delete-by-key" not in known(sig, "SELECT * FROM kf_1_2.notes", repeated)
    fewer = "2 correct before/during/after flush: DELETE affected fewer rows than the model"
    assert "stream-delete-by-key" in known(fewer, "DELETE FROM kf_1_2.events WHERE n = #", repeated)
