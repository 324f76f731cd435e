"""kalamfuzz regression combined_ab7e26fc: violation in machine 'combined'.

Found by: kalamfuzz run --target binary:PATH/TO/kalamdb-server --machine combined --seed 83 --budget 5m
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-07 11:33:03 UTC)
Reproduced on rerun: deterministic (2 of 2 reruns on a fresh server). Transcript: test_combined_ab7e26fc.transcript.jsonl. Report: test_combined_ab7e26fc.md
Run it: pytest test_combined_ab7e26fc.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import Col, IsNull, Not

MACHINE = 'combined'
TABLES = ('notes', 'board', 'vault', 'events', 'routed', 'fragile')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()
#: Runs of the program: it sends calls at once, so it counts as fixed only when no run fails.
REPEAT = 1

# Violated:
#   after SELECT * FROM kf_a69340_77.events:
#   [2 correct before/during/after flush] table kf_a69340_77.events scope kf_a69340_alice: SELECT result differs from the model
#     expected: 3 row(s)
#     observed: 2 row(s)
#     - missing    {_deleted=False, b=False, id=101, n=1, s=None}


def program(d: Driver) -> None:
    d.begin(TABLES)
    # alice: INSERT INTO kf_a69340_77.events (id, b, n, s) VALUES (101, NULL, NULL, NULL), (102, TRUE, -1, NULL), (103, NULL, 0, NULL)
    d.insert('alice', 'events', [{'id': 101, 'b': None, 'n': None, 's': None}, {'n': -1, 'b': True, 'id': 102, 's': None}, {'id': 103, 'n': 0, 's': None, 'b': None}])
    # alice: INSERT INTO kf_a69340_77.events (id, s, n, b) VALUES (101, NULL, 1, FALSE)
    d.insert('alice', 'events', [{'id': 101, 's': None, 'n': 1, 'b': False}])
    # alice: DELETE FROM kf_a69340_77.events WHERE (NOT n IS NOT NULL)
    # alice: SELECT * FROM kf_a69340_77.notes
    # bob: SELECT * FROM kf_a69340_77.notes
    # ... 5 more request(s)
    d.delete('alice', 'events', where=Not(IsNull(Col('n'), True)))
    d.sweep()


def test_combined_ab7e26fc() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        for _ in range(REPEAT):
            program(d)
