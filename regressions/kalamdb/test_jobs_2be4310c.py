"""kalamfuzz regression jobs_2be4310c: violation in machine 'jobs'.

Found by: kalamfuzz run --target binary:PATH --machine jobs --seed 2 --budget 10m (shrunk by hand)
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 10:30:16 UTC)
Reproduced on rerun: flaky (2 of 8 runs failed; the kill must land while the job runs). Transcript: test_jobs_2be4310c.transcript.jsonl. Report: test_jobs_2be4310c.md
Run it: pytest test_jobs_2be4310c.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver

MACHINE = 'jobs'
TABLES = ('fragile', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after job FL-31838c04f7ea of kf_d82d9b_1.board:
#   [6 idempotency and safety] job FL-31838c04f7ea of kf_d82d9b_1.board: a flush job a restart interrupted never ends
#     expected: failed (KalamDB's crash recovery) or completed
#     observed: running 30 s after the restart


def program(d: Driver) -> None:
    d.begin(TABLES)
    # dba: INSERT INTO kf_d82d9b_1.board (id, n, s, b) VALUES (1, 1, 'a', NULL), (2, 2, 'b', NULL)
    # root: SELECT * FROM kf_d82d9b_1.board
    d.insert('dba', 'board', [{'id': 1, 'n': 1, 's': 'a', 'b': None}, {'id': 2, 'n': 2, 's': 'b', 'b': None}])
    # root: STORAGE FLUSH TABLE kf_d82d9b_1.board
    # root: SIGKILL once the flush job ran; restart
    d.crash_during_flush('board', None)
    d.sweep()


def test_jobs_2be4310c() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
