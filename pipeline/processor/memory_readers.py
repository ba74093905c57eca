"""The read ports of `memory.MemoryBroker`: the commands consumer, the reader, the tail.

They see committed records only (the broker holds no others), so read_committed holds here by
construction. A commit makes its records and offsets visible at once, on every partition, so
there is no open transaction for a read to wait for and no gap between stable offsets and the
records they cover: the state the Kafka reader reaches by reading to the high watermark of its
start (`reading`), which on a real cluster waits for each partition's commit marker.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING

from pipeline.processor.memory_group import GroupMetadata
from pipeline.processor.ports import PartitionsCallback
from pipeline.processor.records import InboundRecord

if TYPE_CHECKING:
    from pipeline.processor.memory import MemoryBroker


class MemoryCommandSource:
    """`ports.CommandSource`: a member of the broker's group (`memory_group.MemoryGroup`), which
    it joins at `subscribe` and leaves at `close`; its partitions and generation change at its
    next `poll`/`consume` after a rebalance; `reassign` moves its partitions alone."""

    def __init__(self, broker: MemoryBroker, topic: str) -> None:
        self._broker = broker
        self._topic = topic
        self.member_id = broker.group.new_member_id()
        self._generation = 0
        self._on_assign: PartitionsCallback | None = None
        self._on_revoke: PartitionsCallback | None = None
        self._next: tuple[list[int], int] | None = None
        self._positions: dict[int, int] = {}
        self._going: set[int] = set()
        """Owned partitions that some reassignment since the last poll took away."""
        self.closed = False

    def subscribe(self, on_assign: PartitionsCallback, on_revoke: PartitionsCallback) -> None:
        self._on_assign, self._on_revoke = on_assign, on_revoke
        self._broker.group.join(self)

    def reassign(self, partitions: list[int], generation: int | None = None) -> None:
        """At the next `poll`/`consume`: own `partitions` (a rebalance: without `generation`,
        the group's moves on). Cooperative, as the Kafka source (`cooperative-sticky`): the
        partitions that go are revoked, those that come are assigned, and those kept keep
        their positions; the revocation comes first, and the assignment (possibly empty)
        always follows. A partition that went and came back between two polls is revoked and
        assigned again: another member may have owned it meanwhile (Kafka's cooperative
        protocol has its owner revoke it before anyone else gets it)."""
        if generation is None:
            generation = self._broker.group.moved_on()
        self._going |= set(self._positions) - set(partitions)
        self._next = (list(partitions), generation)

    def _rebalance(self) -> None:
        if self._next is None or self._on_assign is None or self._on_revoke is None:
            return
        (partitions, self._generation), self._next = self._next, None
        revoked = sorted(self._going & set(self._positions))
        self._going = set()
        if revoked:
            for partition in revoked:
                del self._positions[partition]
            self._on_revoke(revoked)
        added = sorted(set(partitions) - set(self._positions))
        for partition in added:
            self.seek(partition, self._broker.committed(self._topic, partition))
        self._on_assign(added)

    def poll(self, timeout: float) -> InboundRecord | None:
        taken = self.consume(1, timeout)
        return taken[0] if taken else None

    def consume(self, num_messages: int, timeout: float) -> list[InboundRecord]:
        self._rebalance()
        taken: list[InboundRecord] = []
        for partition, position in sorted(self._positions.items()):
            wanted = num_messages - len(taken)
            more = self._broker.read(self._topic, partition, position, position + wanted)
            self._positions[partition] = position + len(more)
            taken.extend(more)
        return taken

    def assignment(self) -> list[int]:
        return sorted(self._positions)

    def committed(
        self, partitions: list[int], timeout_s: float = 30.0
    ) -> dict[int, int | None]:
        """Always stable: the broker keeps no pending transactional offsets (see `memory`)."""
        self._broker.offset_fetches.append(list(partitions))
        return {p: self._broker.committed(self._topic, p) for p in partitions}

    def seek(self, partition: int, offset: int | None) -> None:
        self._positions[partition] = offset or 0

    def group_metadata(self) -> GroupMetadata:
        return GroupMetadata(self.member_id, self._generation)

    def lag(self) -> dict[int, int]:
        return {
            partition: self._broker.end(self._topic, partition) - position
            for partition, position in self._positions.items()
        }

    def close(self) -> None:
        self.closed = True
        self._broker.group.leave(self)


class MemoryPartitionReader:
    """`ports.PartitionReader` over the broker's committed records."""

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker

    def read(self, topic: str, partitions: list[int], timeout_s: float) -> Iterator[InboundRecord]:
        error = self._broker.read_fault(topic, partitions)
        for partition in partitions:
            yield from self._broker.read(topic, partition, 0)
        if error is not None:
            raise error


class MemorySnapshotTail:
    """`ports.SnapshotTail` over one topic of the broker; `assignments` lists every `assign`."""

    def __init__(self, broker: MemoryBroker, topic: str) -> None:
        self._broker = broker
        self._topic = topic
        self._positions: dict[int, int] = {}
        self.assignments: list[dict[int, int]] = []

    def assign(self, starts: Mapping[int, int]) -> None:
        self._positions = dict(starts)
        self.assignments.append(dict(starts))

    def catch_up(self, partitions: Collection[int], timeout_s: float) -> Iterator[InboundRecord]:
        yield from self.poll(max_records=2**62)

    def poll(self, max_records: int) -> list[InboundRecord]:
        taken: list[InboundRecord] = []
        for partition, position in sorted(self._positions.items()):
            wanted = max_records - len(taken)
            more = self._broker.read(self._topic, partition, position, position + wanted)
            self._positions[partition] = position + len(more)
            taken.extend(more)
        return taken

    def close(self) -> None:
        self._positions = {}
