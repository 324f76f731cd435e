"""kalamfuzz regression rbac_1f8a1f33: violation in machine 'rbac'.

Found by: kalamfuzz run --target binary:/path/to/kalamdb-server --machine rbac
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 04:30:46 UTC)
Reproduced on rerun: deterministic. Transcript: test_rbac_1f8a1f33.transcript.jsonl. Report: test_rbac_1f8a1f33.md
Run it: pytest test_rbac_1f8a1f33.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import Cmp, Col, Lit

MACHINE = 'rbac'
TABLES = ('notes', 'board', 'vault')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after SELECT * FROM kf_a3883d_1.vault WHERE n < NULL ORDER BY s ASC, id ASC LIMIT 1:
#   [5 RBAC] Select by kf_a3883d_alice on kf_a3883d_1.vault: answered, not refused, when the WHERE is never true: user may not read kf_a3883d_1.vault
#     expected: HTTP 403 PERMISSION_DENIED (user may not read kf_a3883d_1.vault)
#     observed: HTTP 200 success


def program(d: Driver) -> None:
    d.begin(TABLES)
    # alice: SELECT * FROM kf_a3883d_1.vault WHERE n < NULL ORDER BY s ASC, id ASC LIMIT 1
    d.select('alice', 'vault', where=Cmp('<', Col('n'), Lit(None)), order_by=[('s', False), ('id', False)], limit=1)
    d.sweep()


def test_rbac_1f8a1f33() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
