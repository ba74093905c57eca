"""The replica of the users of partitions this process does not own, for `CreateOrder`'s rule.

An order's customer may live on any partition. The users of owned partitions are in the
processor's own state (`state.StateStore`, which the lookup asks first); the others are read here
by a `ports.SnapshotTail` (a group-less read_committed consumer) that follows exactly the
partitions this process does not own, so a process that owns them all reads nothing. It is
eventually consistent: a user deactivated a moment ago by another processor may still read as
active.

Across rebalances (`follow`): a partition never read before is read to its end before the
assignment completes; a partition that stops being owned is handed over (`hand_over`) with its
users as the owner last knew them and is read on from where its restore ended, so what its next
owner writes is never missed, whenever that owner started (a lost assignment included); a
partition that becomes owned stops being read, and its users are forgotten here. Records read
twice change nothing: a user's entry only moves to a newer version.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

from pipeline.domain.common import CustomerStatus
from pipeline.processor.ports import SnapshotTail
from pipeline.processor.records import InboundRecord
from pipeline.processor.restore import snapshot_of
from pipeline.processor.state import StreamState, customer_status_of

log = logging.getLogger(__name__)

_USER_PREFIX = b"user-"

_Users = dict[str, tuple[int, CustomerStatus | None]]
"""User id -> (version, status) of one partition."""


class CustomerReplica:
    """The users of the followed partitions, per partition, and where each partition's reading
    resumes (the offset after the last record seen)."""

    def __init__(self, tail: SnapshotTail) -> None:
        self._tail = tail
        self._users: dict[int, _Users] = {}
        self._next: dict[int, int] = {}
        """Followed partitions, and the handed-over ones about to be: next offset to read."""
        self._followed: frozenset[int] = frozenset()

    @property
    def followed(self) -> frozenset[int]:
        return self._followed

    def follow(self, partitions: int, owned: Collection[int], timeout_s: float) -> None:
        """Read every one of `partitions` but `owned` from now on. Partitions never read before
        are read to their high watermark first (raises `reading.RestoreTimeout` past `timeout_s`);
        the users of partitions now owned are forgotten."""
        wanted = frozenset(range(partitions)) - frozenset(owned)
        for partition in (self._users.keys() | self._next.keys()) - wanted:
            self._users.pop(partition, None)
            self._next.pop(partition, None)
        unread = sorted(wanted - self._next.keys())
        for partition in unread:
            self._next[partition] = 0
        self._followed = wanted
        self._tail.assign({partition: self._next[partition] for partition in sorted(wanted)})
        if unread:
            for record in self._tail.catch_up(unread, timeout_s):
                self._apply(record)
            log.info(
                "replica caught up",
                extra={"partitions": unread, "counts": {"users": self.user_count()}},
            )

    def hand_over(self, partition: int, streams: Iterable[StreamState], resume_at: int) -> None:
        """`partition` is no longer owned: its user `streams` as the owner last committed them,
        and the offset of the aggregates topic its restore read up to. Reading resumes there at
        the next `follow`: everything before it is in `streams`, and everything after it is read
        again (the owner's own writes change nothing, its successor's are applied)."""
        for stream in streams:
            if stream.aggregate_type == "user":
                self.note(partition, stream)
        self._next[partition] = resume_at

    def poll(self, max_messages: int = 5000) -> int:
        """Apply what the followed partitions received since the last call, without waiting;
        the records read."""
        received = self._tail.poll(max_messages)
        for record in received:
            self._apply(record)
        return len(received)

    def _apply(self, record: InboundRecord) -> None:
        if record.partition not in self._followed:
            return  # fetched before `follow` moved on: the partition is owned now
        self._next[record.partition] = record.offset + 1
        key = record.key or b""
        if not key.startswith(_USER_PREFIX):
            return
        try:
            stream_id, stream = snapshot_of(record)
        except Exception as error:  # a bad snapshot must not stop the processor: keep the last
            log.warning(
                "replica ignores an unreadable snapshot",
                extra={"stream_id": key.decode("utf-8", errors="replace"),
                       "partition": record.partition, "offset": record.offset,
                       "error": f"{type(error).__name__}: {error}"},
            )
            return
        if stream is None:
            self._users.get(record.partition, {}).pop(stream_id.removeprefix("user-"), None)
        else:
            self.note(record.partition, stream)

    def note(self, partition: int, stream: StreamState) -> None:
        """Record a user's state if it is at least as new as what the replica holds."""
        users = self._users.setdefault(partition, {})
        user_id = stream.stream_id.removeprefix("user-")
        known = users.get(user_id)
        if known is None or known[0] <= stream.version:
            users[user_id] = (stream.version, customer_status_of(stream))

    def status(self, partition: int, user_id: str) -> CustomerStatus | None:
        """The status of the user `user_id`, whose stream lives on `partition`."""
        known = self._users.get(partition, {}).get(user_id)
        return known[1] if known is not None else None

    def user_count(self) -> int:
        return sum(len(users) for users in self._users.values())

    def close(self) -> None:
        self._tail.close()
