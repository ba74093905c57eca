"""The processor's counts of record outcomes: every consumed command ends as exactly one of
`accepted`, `rejected`, `duplicate`, `dead_lettered`, `forwarded` or `skipped` (forwarded ones
later end as one of the others once re-consumed on their own partition)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pipeline.processor.outcome import RecordOutcome


@dataclass
class ProcessorCounts:
    """Committed outcomes only: a batch's counts are added after its transaction commits."""

    accepted: int = 0
    rejected: int = 0
    duplicate: int = 0
    dead_lettered: int = 0
    forwarded: int = 0
    events: int = 0
    batches: int = 0
    aborted_batches: int = 0
    producer_restarts: int = 0
    unwritable: int = 0
    """Dead letters (also in `dead_lettered`) that are pointers only: the record's own
    transaction kept failing with a fault that implicates it (see `caution`)."""
    skipped: int = 0
    """Records whose pointer dead letter kept failing too: no dead letter exists for them (not in
    `dead_lettered`), only their offset was committed; each is logged at error."""

    def count(self, outcome: RecordOutcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def add(self, other: ProcessorCounts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
