"""The faults of `memory.MemoryBroker`: which coming producer call fails and how (`Fault`), and
what runs in the middle of one (`Stall`); see `memory`'s docstring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pipeline.processor.faults import AbortableFault, FatalFault, ProducerFault, ProducerFenced
from pipeline.processor.records import OutboundRecord

FaultKind = Literal["abortable", "fatal", "fenced", "commit_landed", "commit_lost"]
FaultPoint = Literal["init", "begin", "produce", "send_offsets", "commit", "abort"]


@dataclass
class Fault:
    """A failure of a coming producer call (see `memory`'s docstring)."""

    kind: FaultKind
    point: FaultPoint = "produce"
    times: int | None = 1
    skip: int = 0
    matches: Callable[[OutboundRecord], bool] | None = None
    implicates_record: bool = False
    message: str = "injected"

    def __post_init__(self) -> None:
        if self.kind.startswith("commit_") and self.point != "commit":
            raise ValueError(f"{self.kind} is a commit's outcome: point must be 'commit'")
        if self.point == "init" and self.kind != "fatal":
            raise ValueError("an init fault is fatal (init_transactions failed)")

    def fires(self, point: FaultPoint, record: OutboundRecord | None) -> bool:
        if point != self.point or self.times == 0:
            return False
        if self.matches is not None and (record is None or not self.matches(record)):
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        if self.times is not None:
            self.times -= 1
        return True

    def error(self) -> ProducerFault | ProducerFenced:
        if self.kind == "abortable":
            return AbortableFault(self.message, implicates_record=self.implicates_record)
        if self.kind == "fenced":
            return ProducerFenced(f"{self.message}: fenced by a newer instance")
        if self.kind == "fatal":
            return FatalFault(self.message, implicates_record=self.implicates_record)
        return FatalFault(f"commit outcome unknown: {self.message}")


@dataclass
class Stall:
    """`action` runs once, inside the call at `point` of the producer of `transactional_id`
    after skipping `skip` of them, before that call goes on (stalls do not nest)."""

    transactional_id: str
    point: FaultPoint
    action: Callable[[], None]
    skip: int = 0
