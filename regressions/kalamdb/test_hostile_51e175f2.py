"""kalamfuzz regression hostile_51e175f2: violation in machine 'hostile'.

Found by: kalamfuzz run --target binary:PATH/TO/kalamdb-server --machine hostile --seed 28 --budget 100
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-07 11:33:03 UTC)
Reproduced on rerun: deterministic (2 of 2 reruns on a fresh server). Transcript: test_hostile_51e175f2.transcript.jsonl. Report: test_hostile_51e175f2.md
Run it: pytest test_hostile_51e175f2.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
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
TOLERATED: tuple[str, ...] = (
    '10 hostile clients: accepted a weak password',
)
#: Runs of the program: it sends calls at once, so it counts as fixed only when no run fails.
REPEAT = 1

# Violated:
#   after CREATE USER kf_36d5f1_weak_too_long_bacadf WITH PASSWORD 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk-tail-1' ROLE user:
#   [10 hostile clients] user kf_36d5f1_weak_too_long_bacadf: another password logs in after a weak password
#     expected: HTTP 401 for a password that differs from the account's
#     observed: logged in


def program(d: Driver) -> None:
    d.begin(TABLES)
    # root: CREATE USER kf_36d5f1_weak_too_long_bacadf WITH PASSWORD 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk-tail-1' ROLE user
    # kf_36d5f1_weak_too_long_bacadf: POST /v1/api/auth/login {"user": "kf_36d5f1_weak_too_long_bacadf", "password": "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
    d.weak_password('too_long')
    d.sweep()


def test_hostile_51e175f2() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        for _ in range(REPEAT):
            program(d)
