"""kalamfuzz regression combined_be382113: violation in machine 'combined'.

Found by: kalamfuzz run --target binary:/path/to/kalamdb-server --machine combined
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 04:30:46 UTC)
Reproduced on rerun: deterministic. Transcript: test_combined_be382113.transcript.jsonl. Report: test_combined_be382113.md
Run it: pytest test_combined_be382113.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import Cmp, Col, Lit

MACHINE = 'combined'
TABLES = ('notes', 'board', 'vault', 'events', 'routed', 'fragile')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after UPDATE kf_bca3ec_1.routed SET n = -2 WHERE id <> 8:
#   [2 correct before/during/after flush] Update by kf_bca3ec_dba on kf_bca3ec_1.routed: UPDATE affected another number of rows than the model
#     expected: success, 2 row(s)
#     observed: HTTP 200 success, 0 row(s)


def program(d: Driver) -> None:
    d.begin(TABLES)
    # dba: INSERT INTO kf_bca3ec_1.routed (n, id, s, b) VALUES (-1, 2, 'a', TRUE), (NULL, 3, 'a', FALSE)
    # dba: SELECT * FROM kf_bca3ec_1.routed
    d.insert('dba', 'routed', [{'n': -1, 'id': 2, 's': 'a', 'b': True}, {'b': False, 'id': 3, 'n': None, 's': 'a'}])
    # root: SIGKILL; restart
    # alice: SELECT * FROM kf_bca3ec_1.notes
    # bob: SELECT * FROM kf_bca3ec_1.notes
    # ... 13 more request(s)
    d.crash()
    # dba: UPDATE kf_bca3ec_1.routed SET n = -2 WHERE id <> 8
    d.update('dba', 'routed', {'n': -2}, where=Cmp('<>', Col('id'), Lit(8)))
    d.sweep()


def test_combined_be382113() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
