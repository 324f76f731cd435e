"""kalamfuzz regression jobs_4ec6d233: violation in machine 'jobs'.

Found by: kalamfuzz run --target binary:/path/to/kalamdb-server --machine jobs
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 04:30:46 UTC)
Reproduced on rerun: deterministic. Transcript: test_jobs_4ec6d233.transcript.jsonl. Report: test_jobs_4ec6d233.md
Run it: pytest test_jobs_4ec6d233.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
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
#   after STORAGE FLUSH TABLE kf_3e3add_1.fragile:
#   [3 cold artifacts] Flush by kf_3e3add_dba on kf_3e3add_1.fragile: flush skipped although rows are pending after a failed flush
#     expected: a flush job is started
#     observed: HTTP 200 success, 0 row(s)


def program(d: Driver) -> None:
    d.begin(TABLES)
    # dba: INSERT INTO kf_3e3add_1.fragile (id, s, n, b) VALUES (8, NULL, 2, NULL), (9, NULL, NULL, NULL), (10, '', NULL, NULL)
    # root: SELECT * FROM kf_3e3add_1.fragile
    d.insert('dba', 'fragile', [{'id': 8, 's': None, 'n': 2, 'b': None}, {'id': 9, 'n': None, 's': None, 'b': None}, {'id': 10, 's': '', 'n': None, 'b': None}])
    d.break_storage('spare')
    # dba: STORAGE FLUSH TABLE kf_3e3add_1.fragile
    # root: SELECT job_id, status, message FROM system.jobs WHERE job_id = 'FL-a4c51e8a5fed'
    d.flush('dba', 'fragile', wait=True)
    # dba: STORAGE FLUSH TABLE kf_3e3add_1.fragile
    d.flush('dba', 'fragile', wait=True)
    d.sweep()


def test_jobs_4ec6d233() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
