"""kalamfuzz regression hostile_42fd3791: violation in machine 'hostile'.

Found by: kalamfuzz run --target binary:PATH/TO/kalamdb-server --machine hostile --seed 31 --budget 90
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-07 11:33:03 UTC)
Reproduced on rerun: deterministic (2 of 2 reruns on a fresh server). Transcript: test_hostile_42fd3791.transcript.jsonl. Report: test_hostile_42fd3791.md
Run it: pytest test_hostile_42fd3791.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
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
#: Runs of the program: it races, so it counts as fixed only when no run fails.
REPEAT = 1

# Violated:
#   after SELECT id, d FROM kf_569513_65.nonfinite_998d56 WHERE id = 1:
#   [10 hostile clients] request by root: no answer to a read of a DOUBLE that is not finite
#     expected: HTTP 200
#     observed: no answer (RemoteProtocolError: Server disconnected without sending a response.)


def program(d: Driver) -> None:
    d.begin(TABLES)
    # root: CREATE TABLE kf_569513_65.nonfinite_998d56 (id INT PRIMARY KEY, d DOUBLE) WITH (TYPE = 'SHARED')
    # root: INSERT INTO kf_569513_65.nonfinite_998d56 (id, d) VALUES (1, CAST('NaN' AS DOUBLE))
    # root: SELECT id, d FROM kf_569513_65.nonfinite_998d56 WHERE id = 1
    d.non_finite('nan')
    d.sweep()


def test_hostile_42fd3791() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        for _ in range(REPEAT):
            program(d)
