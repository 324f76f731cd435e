"""kalamfuzz regression jobs_736a4655: violation in machine 'jobs'.

Found by: kalamfuzz run --target binary:PATH/TO/kalamdb-server --machine all --seed 1 --budget 45m
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 10:30:16 UTC)
Reproduced on rerun: deterministic. Transcript: test_jobs_736a4655.transcript.jsonl. Report: test_jobs_736a4655.md
Run it: pytest test_jobs_736a4655.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import And, Between, Col, InList, IsNull, Lit, Or

MACHINE = 'jobs'
TABLES = ('fragile', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = (
    '2 correct before/during/after flush: UPDATE affected another number of rows than the model',
)

# Violated:
#   after UPDATE kf_447bf9_139.board SET n = NULL, s = NULL WHERE id NOT BETWEEN 4 AND 2:
#   [2 correct before/during/after flush] Update by kf_447bf9_dba on kf_447bf9_139.board: refused what must succeed
#     expected: success, 2 row(s)
#     observed: HTTP 400 SQL_EXECUTION_ERROR: Statement 1 failed: Invalid operation: failed to commit transaction '01a2316b-476e-7da3-b4fb-21e74e020e68': Raft error: Provider error: Execution error: Failed to update row: Not found: Row with id=9 was deleted


def program(d: Driver) -> None:
    d.begin(TABLES)
    # dba: INSERT INTO kf_447bf9_139.board (id, n, s, b) VALUES (8, NULL, 'a%', FALSE), (9, -2, '%%', NULL), (10, -1, '', NULL)
    # root: SELECT * FROM kf_447bf9_139.board
    d.insert('dba', 'board', [{'id': 8, 'n': None, 's': 'a%', 'b': False}, {'id': 9, 'b': None, 'n': -2, 's': '%%'}, {'id': 10, 'b': None, 's': '', 'n': -1}])
    # root: STORAGE FLUSH TABLE kf_447bf9_139.board
    # root: SELECT job_id, status, message FROM system.jobs WHERE job_id = 'FL-20dac00b386f'
    d.flush('root', 'board', wait=True)
    # dba: DELETE FROM kf_447bf9_139.board WHERE ((s IS NULL AND id NOT BETWEEN 10 AND 9) OR id IN (9))
    # root: SELECT * FROM kf_447bf9_139.board
    d.delete('dba', 'board', where=Or(And(IsNull(Col('s')), Between(Col('id'), Lit(10), Lit(9), True)), InList(Col('id'), (Lit(9),))))
    # root: SIGKILL; restart
    # root: SELECT * FROM kf_447bf9_139.fragile
    # root: SELECT * FROM kf_447bf9_139.board
    d.crash()
    # dba: UPDATE kf_447bf9_139.board SET n = NULL, s = NULL WHERE id NOT BETWEEN 4 AND 2  -> SQL_EXECUTION_ERROR
    d.update('dba', 'board', {'n': None, 's': None}, where=Between(Col('id'), Lit(4), Lit(2), True))
    d.sweep()


def test_jobs_736a4655() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
