"""kalamfuzz regression ddl_c42800d2: violation in machine 'ddl'.

Found by: kalamfuzz run --target binary:PATH/TO/kalamdb-server --machine ddl --seed 5 --budget 10
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-07 11:33:03 UTC)
Reproduced on rerun: deterministic (2 of 2 reruns on a fresh server). Transcript: test_ddl_c42800d2.transcript.jsonl. Report: test_ddl_c42800d2.md
Run it: pytest test_ddl_c42800d2.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver

MACHINE = 'ddl'
TABLES = ('notes', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()
#: Runs of the program: it races, so it counts as fixed only when no run fails.
REPEAT = 1

# Violated:
#   after ALTER TABLE kf_e66852_60.notes DROP COLUMN n:
#   [5 RBAC] AlterDropColumn by kf_e66852_alice on kf_e66852_60.notes: accepted what must fail: user may not ALTER a table another account created
#     expected: HTTP 403 PERMISSION_DENIED (user may not ALTER a table another account created)
#     observed: HTTP 200 success, 0 row(s)


def program(d: Driver) -> None:
    d.begin(TABLES)
    # alice: ALTER TABLE kf_e66852_60.notes DROP COLUMN n
    d.drop_column('alice', 'notes', 'n')
    d.sweep()


def test_ddl_c42800d2() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        for _ in range(REPEAT):
            program(d)
