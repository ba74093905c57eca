"""`replay`: move a stopped projector's position (store checkpoint and group offsets together).

Contract: refuses (`ProjectorRunning`) while the projector's consumer group has members, since
the store checkpoint is the truth and a running projector would write its own over it. When
idle, writes the store checkpoints first (the position the projector will really resume from),
then commits the group's offsets to match (they only serve lag tools; the broker itself refuses
that commit if a member joined meanwhile). Replaying over an existing read model is idempotent:
the store's writes are guarded by event version, so re-applied events change nothing that is
already there. Blocked streams stay blocked (release them with `dlq retry`).
"""

from __future__ import annotations

from dataclasses import dataclass

from projections.operations.errors import ProjectorRunning
from projections.operations.kafka import KafkaOps
from projections.operations.positions import (
    StartAt,
    checkpoints_for,
    next_offsets_at_beginning,
    selected,
)
from projections.operations.stores import OperableStore


@dataclass(frozen=True)
class ReplayPlan:
    """What a replay wrote: per partition, the old and new checkpoint and the high watermark."""

    topic: str
    before: dict[int, int]
    after: dict[int, int]
    ends: dict[int, int]

    @property
    def to_go(self) -> int:
        return sum(self.ends[p] - (self.after[p] + 1) for p in self.after)


def ensure_stopped(kafka: KafkaOps, group: str, what: str) -> None:
    members = kafka.active_members(group)
    if members:
        raise ProjectorRunning(
            f"projector {what} is running ({members} member(s) in consumer group {group}); "
            "stop it first (SIGTERM / Ctrl-C its `cqrs project` process, or stop its service) "
            "and check with `cqrs lag` that its state is `stopped`. A projector killed without "
            "leaving the group stays listed until its session times out.")


def next_offsets(kafka: KafkaOps, topic: str, start: StartAt) -> dict[int, int]:
    """Partition → first offset to read again, for the partitions `start` selects."""
    marks = kafka.watermarks(topic)
    partitions = selected(sorted(marks), start)
    if start.kind == "beginning":
        return next_offsets_at_beginning(partitions, marks)
    if start.kind == "timestamp":
        assert start.millis is not None
        return kafka.offsets_for_time(topic, start.millis, partitions)
    assert start.offsets is not None
    if start.partition is not None:
        return {start.partition: start.offsets[start.partition]}
    return {p: start.offsets[p] for p in partitions}


async def replay(kafka: KafkaOps, store: OperableStore, *, name: str, group: str, topic: str,
                 start: StartAt) -> ReplayPlan:
    """Move projector `name` to `start` (see the module contract); returns what was written."""
    ensure_stopped(kafka, group, name)
    marks = kafka.watermarks(topic)
    after = checkpoints_for(next_offsets(kafka, topic, start), marks)
    before = await store.checkpoints(topic)
    await store.set_checkpoints(topic, after)
    kafka.commit_group(group, topic, {p: offset + 1 for p, offset in after.items()})
    return ReplayPlan(topic, before, after, {p: marks[p][1] for p in after})
