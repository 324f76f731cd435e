"""kalamfuzz regression flush_ae1821c6: violation in machine 'flush'.

Found by: kalamfuzz run --target binary:/path/to/kalamdb-server --machine flush
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 04:30:46 UTC)
Reproduced on rerun: deterministic. Transcript: test_flush_ae1821c6.transcript.jsonl. Report: test_flush_ae1821c6.md
Run it: pytest test_flush_ae1821c6.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import Cmp, Col, Lit

MACHINE = 'flush'
TABLES = ('notes', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after SELECT * FROM kf_105ca1_1.notes:
#   [2 correct before/during/after flush] table kf_105ca1_1.notes scope kf_105ca1_alice: a deleted row is visible again
#     expected: the rows deleted stay deleted
#     observed: 1 deleted row(s) returned
#     + deleted earlier {_deleted=False, _seq=386035407950548992, b=None, id=8, n=None, s=None}


def program(d: Driver) -> None:
    d.begin(TABLES)
    # alice: INSERT INTO kf_105ca1_1.notes (id, s, n, b) VALUES (8, NULL, NULL, NULL), (9, NULL, -1, NULL), (10, NULL, -3, NULL)
    # alice: SELECT * FROM kf_105ca1_1.notes
    d.insert('alice', 'notes', [{'id': 8, 's': None, 'n': None, 'b': None}, {'id': 9, 'n': -1, 's': None, 'b': None}, {'id': 10, 'n': -3, 's': None, 'b': None}])
    # root: STORAGE FLUSH TABLE kf_105ca1_1.notes
    # root: SELECT job_id, status, message FROM system.jobs WHERE job_id = 'FL-3f627631e372'
    d.flush('root', 'notes', wait=True)
    # alice: DELETE FROM kf_105ca1_1.notes WHERE id = 8
    # alice: SELECT * FROM kf_105ca1_1.notes
    d.delete('alice', 'notes', where=Cmp('=', Col('id'), Lit(8)))
    # alice: INSERT INTO kf_105ca1_1.notes (id, n, b, s) VALUES (0, NULL, NULL, NULL), (1, NULL, TRUE, NULL)
    # alice: SELECT * FROM kf_105ca1_1.notes
    d.insert('alice', 'notes', [{'id': 0, 'n': None, 'b': None, 's': None}, {'id': 1, 'b': True, 's': None, 'n': None}])
    # svc: STORAGE FLUSH TABLE kf_105ca1_1.notes
    # root: SELECT job_id, status, message FROM system.jobs WHERE job_id = 'FL-90f5803cdc72'
    # alice: SELECT * FROM kf_105ca1_1.notes
    d.flush('svc', 'notes', wait=True)
    d.sweep()


def test_flush_ae1821c6() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
