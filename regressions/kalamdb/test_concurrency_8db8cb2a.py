"""kalamfuzz regression concurrency_8db8cb2a: violation in machine 'concurrency'.

Found by: kalamfuzz run --target binary:PATH/TO/kalamdb-server --machine concurrency --seed 1 --budget 10m
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-07 11:33:03 UTC)
Reproduced on rerun: deterministic. Transcript: test_concurrency_8db8cb2a.transcript.jsonl. Report: test_concurrency_8db8cb2a.md
Run it: pytest test_concurrency_8db8cb2a.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.machines.driver.rounds import Read, Tx
from kalamfuzz.machines.driver.workload import Write
from kalamfuzz.model.where import Cmp, Col, Lit

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
#   after calls sent at once:
#   [9 concurrency and transactions] 1 calls sent at once: no order of the calls sent at once explains a transaction (COMMIT)
#     calls sent at once (time runs right; * no order explains these replies):
#       * #1 bob#1       [-]        BEGIN; INSERT INTO kf_8093e9_285.notes (id, s, n, b) VALUES (0, NULL, 2, TRUE); SELECT * FROM kf_8093e9_285... -> SQL_EXECUTION_ERROR SQL statement failed
#         #2 bob (after)     [-]    SELECT * FROM kf_8093e9_285.notes ORDER BY id ASC LIMIT 1000 -> 0 rows []
#     the longest order that explains a prefix: (none)
#       #1 cannot come next: the model expected ok, inserted 1, updated 0, deleted 0; read 1 rows [{_deleted=False, b=True, id=0, n=2, s=None}]; the server said: SQL_EXECUTION_ERROR SQL statement failed


def program(d: Driver) -> None:
    d.begin(TABLES)
    # bob: BEGIN; INSERT INTO kf_8093e9_285.notes (id, s, n, b) VALUES (0, NULL, 2, TRUE); SELECT * FROM kf_8093e9_285.notes WHERE id = 0 ORDER BY id ASC LIMIT 1000
    # bob: SELECT * FROM kf_8093e9_285.notes ORDER BY id ASC LIMIT 1000
    d.concurrently([Tx('bob', (Write('bob', 'notes', ({'id': 0, 's': None, 'n': 2, 'b': True},)), Read('bob', 'notes', Cmp('=', Col('id'), Lit(0)))))])
    d.sweep()


def test_concurrency_8db8cb2a() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        for _ in range(REPEAT):
            program(d)
