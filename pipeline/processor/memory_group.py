"""The consumer group of `memory.MemoryBroker`: members, their partitions and the generation.

Each rebalance (a member joins or leaves, or `rebalance` is called) moves the generation on. A
member learns its new partitions and the new generation only at its next `poll`/`consume`, so a
member that holds a batch open across a rebalance still carries the old generation in its
`group_metadata`. That is stricter than Kafka's cooperative protocol, where a partition's new
owner gets it only after the old one revoked it (and librdkafka rejoins in the background): here
both may hold it for a moment, and only the generation keeps the old owner's offsets out.
With KIP-447 the broker refuses transactional offsets of a
stale generation (`TxnOffsetCommit` answers `ILLEGAL_GENERATION`/`UNKNOWN_MEMBER_ID`, which
librdkafka turns into an abortable transaction error: `AbortableFault` in `faults`), so the
zombie's batch can never commit over the new owner's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class GroupMetadata:
    """What `CommandSource.group_metadata` returns: the member and the generation it joined."""

    member_id: int
    generation: int


class Member(Protocol):
    member_id: int

    def reassign(self, partitions: list[int], generation: int) -> None: ...


class MemoryGroup:
    """Members in join order; partitions dealt round robin from a rotation chosen per rebalance."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.generation = 0
        self._members: list[Member] = []
        self._next_member_id = 0

    def new_member_id(self) -> int:
        self._next_member_id += 1
        return self._next_member_id

    @property
    def members(self) -> list[int]:
        return [member.member_id for member in self._members]

    def join(self, member: Member) -> None:
        self._members.append(member)
        self.rebalance()

    def leave(self, member: Member) -> None:
        if member in self._members:
            self._members.remove(member)
            self.rebalance()

    def rebalance(self, shift: int = 0) -> int:
        """A new generation: partition `p` goes to member `(p + shift) % members`."""
        self.generation += 1
        count = len(self._members)
        for index, member in enumerate(self._members):
            owned = [p for p in range(self.partitions) if (p + shift) % count == index]
            member.reassign(owned, self.generation)
        return self.generation

    def moved_on(self) -> int:
        """A rebalance that changes no member's partitions (`MemoryCommandSource.reassign`)."""
        self.generation += 1
        return self.generation

    def current(self, metadata: object) -> bool:
        """Whether offsets sent with `metadata` may commit: a member of the current generation."""
        return (
            isinstance(metadata, GroupMetadata)
            and metadata.generation == self.generation
            and metadata.member_id in self.members
        )
