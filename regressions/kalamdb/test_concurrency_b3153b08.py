"""kalamfuzz regression concurrency_b3153b08: violation in machine 'concurrency'.

Found by: kalamfuzz run --target binary:PATH/TO/kalamdb-server --machine concurrency --seed 2 --budget 10m
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-07 11:33:03 UTC)
Reproduced on rerun: deterministic. Transcript: test_concurrency_b3153b08.transcript.jsonl. Report: test_concurrency_b3153b08.md
Run it: pytest test_concurrency_b3153b08.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.machines.driver.rounds import Tx
from kalamfuzz.machines.driver.workload import Write
from kalamfuzz.model.exprs import Concat
from kalamfuzz.model.where import Cmp, Col, InList, Lit

MACHINE = 'concurrency'
TABLES = ('notes', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()
#: Runs of the program: it sends calls at once, so it counts as fixed only when no run fails.
REPEAT = 1

# Violated:
#   after calls sent at once: BEGIN; INSERT INTO kf_0fddd6_74.board (b, id, n, s) VALUES (FALSE, 8, 2, NULL); DELETE FROM kf_0fddd6_74.board WHERE id IN (10, 8); UPDATE kf_0fddd6_74.board SET s = (s || 'b') WHERE id = 8; COMMIT:
#   [9 concurrency and transactions] 1 calls sent at once: no order of the calls sent at once explains a transaction (COMMIT)
#     calls sent at once (time runs right; * no order explains these replies):
#       * #1 root#1       [-]        BEGIN; INSERT INTO kf_0fddd6_74.board (b, id, n, s) VALUES (FALSE, 8, 2, NULL); DELETE FROM kf_0fddd6_74.bo... -> SQL_EXECUTION_ERROR Statement 5 failed: Invalid operation: failed to commit transaction '01a2508e-434d-7c50-b679-50648b8
#         #2 root (after)     [-]    SELECT * FROM kf_0fddd6_74.board ORDER BY id ASC LIMIT 1000 -> 1 rows [[10, None, 'a', False, '388311307995942914', False]]
#     the longest order that explains a prefix: (none)
#       #1 cannot come next: the model expected ok, inserted 1, updated 0, deleted 2; the server said: SQL_EXECUTION_ERROR Statement 5 failed: Invalid operation: failed to commit transaction '01a2508e-434d-7c50-b679-50648b8


def program(d: Driver) -> None:
    d.begin(TABLES)
    # dba: INSERT INTO kf_0fddd6_74.board (id, n, s, b) VALUES (8, NULL, '', NULL), (9, NULL, NULL, NULL), (10, NULL, 'a', FALSE)
    # root: SELECT * FROM kf_0fddd6_74.board
    d.insert('dba', 'board', [{'id': 8, 'n': None, 's': '', 'b': None}, {'id': 9, 's': None, 'n': None, 'b': None}, {'id': 10, 's': 'a', 'n': None, 'b': False}])
    # root: STORAGE FLUSH TABLE kf_0fddd6_74.board
    # root: SELECT job_id, status, message FROM system.jobs WHERE job_id = 'FL-7cc9d4e7c851'
    d.flush('root', 'board', wait=True)
    # dba: DELETE FROM kf_0fddd6_74.board WHERE id IN (9, 8)
    # root: SELECT * FROM kf_0fddd6_74.board
    d.delete('dba', 'board', where=InList(Col('id'), (Lit(9), Lit(8))))
    # root: BEGIN; INSERT INTO kf_0fddd6_74.board (b, id, n, s) VALUES (FALSE, 8, 2, NULL); DELETE FROM kf_0fddd6_74.board WHERE id IN (10, 8); UPDATE kf_0fddd6_74.
    # root: SELECT * FROM kf_0fddd6_74.board ORDER BY id ASC LIMIT 1000
    d.concurrently([Tx('root', (Write('root', 'board', ({'b': False, 'id': 8, 'n': 2, 's': None},)), Write('root', 'board', where=InList(Col('id'), (Lit(10), Lit(8))), delete=True), Write('root', 'board', assignments={'s': Concat(Col('s'), Lit('b'))}, where=Cmp('=', Col('id'), Lit(8)))))])
    d.sweep()


def test_concurrency_b3153b08() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        for _ in range(REPEAT):
            program(d)
