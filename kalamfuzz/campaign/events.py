"""What a campaign reports, as typed events. Every output (console, JUnit, JSONL, regression
files) is a handler of these; the engine knows none of them."""

from __future__ import annotations

from collections.abc import Mapping

from attrs import frozen

from kalamfuzz.machines.driver import Exchange, StepStats


@frozen
class CampaignStarted:
    machine: str
    target: str
    seed: int
    budget: str
    bugs: tuple[str, ...]
    #: Rules the target cannot run, each with the reason (a url target cannot be crashed).
    skipped: tuple[str, ...] = ()
    #: Which known findings the run counts instead of failing on, and from where.
    known: str = ""
    #: Campaigns run at once, each against its own target (``kalamfuzz run --workers N``).
    workers: int = 1
    #: Which one of them this is, when it runs alone (``--worker-index``).
    worker: int | None = None
    #: The example database the workers share (``--database``), "" for none.
    database: str = ""


@frozen
class Progress:
    elapsed_s: float
    examples: int
    steps: int
    failures: int
    #: Known findings counted so far (explored past, not saved again).
    known: int = 0
    machine: str = ""


@frozen
class Failure:
    """One distinct failure, shrunk. ``kind`` is ``violation`` (the contract broke) or ``error``
    (the target or kalamfuzz raised something else: a crash, a protocol error, a model gap)."""

    machine: str
    kind: str
    #: Stable across runs: the same contract item and summary give the same signature.
    signature: str
    message: str
    items: tuple[str, ...]
    program: tuple[str, ...]
    imports: tuple[str, ...]
    tables: tuple[str, ...]
    transcript: tuple[Exchange, ...]
    seed: int
    seconds_to_failure: float
    bugs: tuple[str, ...]
    #: Examples run up to the first failing one, that one included (shrinking not counted).
    examples_to_failure: int = 0
    #: Signatures of the known findings the failing example went past (its replay tolerates
    #: exactly these).
    tolerated: tuple[str, ...] = ()
    #: The server's name and version, as its health endpoint tells them.
    server: str = ""
    #: The requests that made the users and storages the program uses (secrets redacted).
    setup: tuple[Exchange, ...] = ()
    #: The program's outcome may depend on timing (calls at once, or a step while a flush job
    #: runs): a race, rerun many times to say how often.
    race: bool = False

    @property
    def steps(self) -> int:
        """Rule steps in the shrunk program (the fixed setup not counted)."""
        return len(self.program)


@frozen
class RegressionSaved:
    failure: Failure
    path: str
    #: From reruns on a fresh server: ``deterministic (n of n reruns on ...)``, ``fails k of n
    #: reruns on ...``, or ``needs the server's history`` (it fails only on the campaign's).
    label: str


#: A rule's steps in all: the drivers' ``StepStats`` summed over the campaign's machines.
RuleStats = StepStats


@frozen
class KnownCount:
    """A known finding and how often the campaign met it."""

    #: The known issue's id, or the signature of a finding saved earlier in the campaign.
    label: str
    title: str
    report: str
    count: int
    machines: tuple[str, ...]


@frozen
class MachineFinished:
    """One machine's share of a campaign is spent (``--machine all`` runs them in turn)."""

    machine: str
    elapsed_s: float
    #: Generated examples (shrinking's replays not counted).
    examples: int
    #: Driver steps (statements, subscriptions, flushes, faults), for the rate.
    steps: int
    #: Hypothesis steps of the median generated example.
    median_steps: float
    #: Examples that ran every step they were given (none ended early by a new finding).
    full_examples: int
    new: int
    known: int

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.elapsed_s if self.elapsed_s > 0 else 0.0


@frozen
class CampaignFinished:
    elapsed_s: float
    examples: int
    steps: int
    failures: tuple[Failure, ...]
    duplicates: int
    rules: Mapping[str, RuleStats]
    exit_code: int
    known: tuple[KnownCount, ...] = ()
    machines: tuple[MachineFinished, ...] = ()
    server: str = ""

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def outside_share(self) -> float:
        """Share of step time spent outside adapter calls: the fuzzer's own overhead."""
        total = sum(r.seconds for r in self.rules.values())
        io = sum(r.io_seconds for r in self.rules.values())
        return (total - io) / total if total > 0 else 0.0


Event = (
    CampaignStarted
    | Progress
    | Failure
    | RegressionSaved
    | MachineFinished
    | CampaignFinished
    | Exchange
)
