"""`lag`: how far each projector (and the processor) is behind, and what waits in its DLQ.

A projector's position is its store checkpoint (the truth it resumes from), not its group
offsets. `lag` is the number of offsets between the position and the high watermark, except that
a partition whose remaining offsets hold no committed record (only transaction markers, which
take offsets too) counts as 0: a read_committed reader has nothing left there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from projections.operations.kafka import KafkaOps
from projections.operations.stores import OperableStore


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    position: int | None
    """Next offset to read (checkpoint + 1, or the committed offset); `None`: from the start."""
    end: int
    lag: int


@dataclass(frozen=True)
class ComponentLag:
    """One projector, or the processor (`name` "processor")."""

    name: str
    group: str
    state: str
    partitions: list[PartitionLag]
    dlq_topic: str
    dlq_depth: int
    parked: int
    blocked: int
    details: dict[str, int] = field(default_factory=dict)
    """What else the component holds (the process managers: customers, open orders)."""

    @property
    def lag(self) -> int:
        return sum(row.lag for row in self.partitions)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "lag": self.lag}


def partition_lags(kafka: KafkaOps, topic: str, positions: dict[int, int]) -> list[PartitionLag]:
    """Lag per partition of `topic` for `positions` (partition → next offset to read)."""
    rows = []
    for partition, (low, high) in sorted(kafka.watermarks(topic).items()):
        position = positions.get(partition)
        behind = max(0, high - max(low, position if position is not None else low))
        if behind and not kafka.has_records_from(topic, partition, high - behind):
            behind = 0
        rows.append(PartitionLag(partition, position, high, behind))
    return rows


def depth(kafka: KafkaOps, topic: str) -> int:
    """Records in `topic` now: sum of high - low watermarks."""
    return sum(high - low for low, high in kafka.watermarks(topic).values())


def state_of(kafka: KafkaOps, group: str) -> str:
    return "running" if kafka.active_members(group) else "stopped"


async def projector_lag(kafka: KafkaOps, store: OperableStore, *, name: str, group: str,
                        events: str, dlq: str) -> ComponentLag:
    checkpoints = await store.checkpoints(events)
    positions = {partition: offset + 1 for partition, offset in checkpoints.items()}
    parked = await store.parked_records()
    blocked = await store.blocked()
    return ComponentLag(name, group, state_of(kafka, group),
                        partition_lags(kafka, events, positions), dlq, depth(kafka, dlq),
                        len(parked), len(blocked))


def processor_lag(kafka: KafkaOps, *, group: str, commands: str, dlq: str) -> ComponentLag:
    """The processor's committed offsets (written in its transactions) against `commands`."""
    positions = kafka.committed(group, commands)
    return ComponentLag("processor", group, state_of(kafka, group),
                        partition_lags(kafka, commands, positions), dlq, depth(kafka, dlq), 0, 0)
