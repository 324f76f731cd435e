"""kalamfuzz regression flush_d3ba94dd: violation in machine 'flush'.

Found by: kalamfuzz run --target binary:/path/to/kalamdb-server --machine flush
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 04:30:46 UTC)
Reproduced on rerun: deterministic. Transcript: test_flush_d3ba94dd.transcript.jsonl. Report: test_flush_d3ba94dd.md
Run it: pytest test_flush_d3ba94dd.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import And, Between, Cmp, Col, IsNull, Lit, Not, Or

MACHINE = 'flush'
TABLES = ('notes', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after INSERT INTO kf_a5031c_1.board (id, s, n, b) VALUES (2, NULL, -3, NULL):
#   [6 idempotency and safety] Insert by kf_a5031c_svc on kf_a5031c_1.board: INSERT of a deleted key refused while its old row is in the cold tier
#     expected: success, 1 row(s)
#     observed: HTTP 400 SQL_EXECUTION_ERROR: Statement 1 failed: Execution error: Raft error: Internal error: Provider error: Execution error: Failed to insert batch: Already exists: Primary key violation: value '2' already exists in column 'id'


def program(d: Driver) -> None:
    d.begin(TABLES)
    # svc: INSERT INTO kf_a5031c_1.board (id, b, s, n) VALUES (2, FALSE, '', NULL), (4, TRUE, '%', 0)
    # root: SELECT * FROM kf_a5031c_1.board
    d.insert('svc', 'board', [{'id': 2, 'b': False, 's': '', 'n': None}, {'s': '%', 'b': True, 'n': 0, 'id': 4}])
    # dba: STORAGE FLUSH TABLE kf_a5031c_1.board
    # root: SELECT job_id, status, message FROM system.jobs WHERE job_id = 'FL-350eb8eb5cba'
    d.flush('dba', 'board', wait=True)
    # svc: DELETE FROM kf_a5031c_1.board WHERE ((id BETWEEN 1 AND 9 OR n IS NOT NULL) AND (NOT id >= 10))
    # root: SELECT * FROM kf_a5031c_1.board
    d.delete('svc', 'board', where=And(Or(Between(Col('id'), Lit(1), Lit(9)), IsNull(Col('n'), True)), Not(Cmp('>=', Col('id'), Lit(10)))))
    # svc: INSERT INTO kf_a5031c_1.board (id, s, n, b) VALUES (2, NULL, -3, NULL)  -> SQL_EXECUTION_ERROR
    d.insert('svc', 'board', [{'id': 2, 's': None, 'n': -3, 'b': None}])
    d.sweep()


def test_flush_d3ba94dd() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
