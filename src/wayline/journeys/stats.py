"""Per-step counts, conversion and split results, from a journey's step records. Pure.

The engine (and whoever applies the send-time policies) emits a :class:`StepRecord` for every
entry, every step reached and left, every send sent/skipped/deferred, and every end. This module
folds a sequence of them into a :class:`JourneyStats` — the same numbers for a simulation and,
later, for the live runtime reading its records table.

Split results compare conversion per branch, holdout included: a holdout customer is watched
for the goal over the same window as the others (see :mod:`wayline.journeys.engine`), so
"treatment converted 12 %, holdout 9 %" is a fair comparison.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from wayline.journeys.engine import RecordKind, StepRecord
from wayline.journeys.model import Journey, SplitStep, step_type


@dataclass(frozen=True)
class StepStats:
    step_id: str
    step_type: str
    reached: int = 0
    left: int = 0
    outcomes: Mapping[str, int] = field(default_factory=dict)
    """How customers left the step: ``elapsed``, ``event``, ``timeout``, ``case``…"""
    branches: Mapping[str, int] = field(default_factory=dict)
    """Which way they left it (wait_for, switch and split steps)."""
    sent: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    """Sends the policies skipped, by reason (``no_consent``, ``frequency_cap``…)."""
    deferred: int = 0
    ended_here: Mapping[str, int] = field(default_factory=dict)
    """Instances that ended while at this step, by how (``converted``, ``exited``…)."""


@dataclass(frozen=True)
class BranchStats:
    name: str
    customers: int
    converted: int

    @property
    def conversion_rate(self) -> float:
        return self.converted / self.customers if self.customers else 0.0


@dataclass(frozen=True)
class JourneyStats:
    journey_id: str
    entered: int
    converted: int
    exited: int
    completed: int
    active: int
    refused: Mapping[str, int]
    """Trigger matches that did not enter, by reason (``active``, ``once``, ``throttled``…)."""
    steps: tuple[StepStats, ...]
    splits: Mapping[str, tuple[BranchStats, ...]]
    sent_by_channel: Mapping[str, int]

    @property
    def conversion_rate(self) -> float:
        return self.converted / self.entered if self.entered else 0.0

    def step(self, step_id: str) -> StepStats:
        return next(s for s in self.steps if s.step_id == step_id)


def compute_stats(journey: Journey, records: Iterable[StepRecord]) -> JourneyStats:
    """Fold step records (of one journey, any versions) into counts."""
    totals: Counter[RecordKind] = Counter()
    refused: Counter[str] = Counter()
    reached: Counter[str] = Counter()
    left: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    branches: dict[str, Counter[str]] = defaultdict(Counter)
    sent: Counter[str] = Counter()
    skipped: dict[str, Counter[str]] = defaultdict(Counter)
    deferred: Counter[str] = Counter()
    ended: dict[str, Counter[str]] = defaultdict(Counter)
    by_channel: Counter[str] = Counter()
    split_of: dict[str, dict[str, str]] = defaultdict(dict)  # split step → instance → branch
    converted_instances: set[str] = set()
    split_steps = {s.id for s in journey.steps if isinstance(s, SplitStep)}
    for r in records:
        totals[r.kind] += 1
        step = r.step_id or ""
        match r.kind:
            case RecordKind.ENTRY_REFUSED:
                refused[r.outcome or "unknown"] += 1
            case RecordKind.REACHED:
                reached[step] += 1
            case RecordKind.LEFT:
                left[step] += 1
                outcomes[step][r.outcome or ""] += 1
                if r.branch is not None:
                    branches[step][r.branch] += 1
                    if step in split_steps:
                        split_of[step][r.instance_id] = r.branch
            case RecordKind.SENT:
                sent[step] += 1
                by_channel[r.branch or "?"] += 1
            case RecordKind.SEND_SKIPPED:
                skipped[step][r.outcome or ""] += 1
            case RecordKind.SEND_DEFERRED:
                deferred[step] += 1
            case RecordKind.CONVERTED | RecordKind.EXITED | RecordKind.COMPLETED:
                ended[step or "$end"][r.kind.value] += 1
                if r.kind is RecordKind.CONVERTED:
                    converted_instances.add(r.instance_id)
    entered = totals[RecordKind.ENTERED]
    finished = (
        totals[RecordKind.CONVERTED] + totals[RecordKind.EXITED] + totals[RecordKind.COMPLETED]
    )
    steps = tuple(
        StepStats(
            step_id=s.id,
            step_type=step_type(s),
            reached=reached[s.id],
            left=left[s.id],
            outcomes=dict(outcomes[s.id]),
            branches=dict(branches[s.id]),
            sent=sent[s.id],
            skipped=dict(skipped[s.id]),
            deferred=deferred[s.id],
            ended_here=dict(ended[s.id]),
        )
        for s in journey.steps
    )
    splits: dict[str, tuple[BranchStats, ...]] = {}
    for split_id in sorted(split_steps):
        assigned = split_of[split_id]
        per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for instance_id, branch in assigned.items():
            per[branch][0] += 1
            per[branch][1] += instance_id in converted_instances
        splits[split_id] = tuple(BranchStats(n, c[0], c[1]) for n, c in sorted(per.items()))
    return JourneyStats(
        journey_id=journey.id,
        entered=entered,
        converted=totals[RecordKind.CONVERTED],
        exited=totals[RecordKind.EXITED],
        completed=totals[RecordKind.COMPLETED],
        active=entered - finished,
        refused=dict(refused),
        steps=steps,
        splits=splits,
        sent_by_channel=dict(by_channel),
    )
