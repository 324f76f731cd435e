"""kalamfuzz regression data_e670d8ca: violation in machine 'data'.

Found by: kalamfuzz run --target binary:/path/to/kalamdb-server --machine data
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 04:30:46 UTC)
Reproduced on rerun: deterministic. Transcript: test_data_e670d8ca.transcript.jsonl. Report: test_data_e670d8ca.md
Run it: pytest test_data_e670d8ca.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import Cmp, Col, Lit

MACHINE = 'data'
TABLES = ('notes', 'board', 'events')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after UPDATE kf_a5069c_1.notes SET n = NULL, s = '' WHERE n <> NULL:
#   [2 correct before/during/after flush] Update by kf_a5069c_bob on kf_a5069c_1.notes: refused an UPDATE or DELETE whose WHERE is never true
#     expected: success, 0 row(s)
#     observed: HTTP 400 SQL_EXECUTION_ERROR: SQL statement failed


def program(d: Driver) -> None:
    d.begin(TABLES)
    # bob: UPDATE kf_a5069c_1.notes SET n = NULL, s = '' WHERE n <> NULL  -> SQL_EXECUTION_ERROR
    d.update('bob', 'notes', {'n': None, 's': ''}, where=Cmp('<>', Col('n'), Lit(None)))
    d.sweep()


def test_data_e670d8ca() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
