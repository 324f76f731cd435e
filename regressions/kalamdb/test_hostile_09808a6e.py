"""kalamfuzz regression hostile_09808a6e: violation in machine 'hostile'.

Found by: kalamfuzz run --target binary:PATH/TO/kalamdb-server --machine hostile --seed 28 --budget 100
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-07 11:33:03 UTC)
Reproduced on rerun: deterministic (2 of 2 reruns on a fresh server). Transcript: test_hostile_09808a6e.transcript.jsonl. Report: test_hostile_09808a6e.md
Run it: pytest test_hostile_09808a6e.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver

MACHINE = 'hostile'
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
#   after CREATE USER kf_36d5f1_weak_common_5a1e6d WITH PASSWORD 'password1' ROLE user:
#   [10 hostile clients] user kf_36d5f1_weak_common_5a1e6d: accepted a weak password
#     expected: a 4xx error
#     observed: HTTP 200: User 'kf_36d5f1_weak_common_5a1e6d' created


def program(d: Driver) -> None:
    d.begin(TABLES)
    # root: CREATE USER kf_36d5f1_weak_common_5a1e6d WITH PASSWORD 'password1' ROLE user
    d.weak_password('common')
    d.sweep()


def test_hostile_09808a6e() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        for _ in range(REPEAT):
            program(d)
