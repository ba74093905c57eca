"""What flows through a projector: source records, decoded items, batches, and the store contract.

A `Store` is the one thing a projector must provide (PostgreSQL, Elasticsearch, a fake). Its
`apply` is idempotent by event version, so redelivered events are counted as skipped, and it never
moves a checkpoint past what it did not write. How far it is atomic is per store:

- `PostgresStore` (and its `FakeStore`): one transaction, so the batch's rows, parked records and
  checkpoints are all written, or none of them.
- `SearchProjectorStore` (and its `FakeSearchStore`): Elasticsearch has no multi-document
  transaction. Documents, then parked/blocked records, then checkpoints, each write idempotent:
  an `apply` that raises may have written some documents or records (never a checkpoint after
  them), and applying the batch again changes nothing more than applying it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from topics import Event, EventEnvelope


@dataclass(frozen=True)
class SourceRecord:
    """One Kafka record as read, before decoding."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> str | None:
        """The last value of header `name` as text, or `None`."""
        found = [value for key, value in self.headers if key == name]
        return found[-1].decode("utf-8", errors="replace") if found else None


@dataclass(frozen=True)
class Item:
    """A decoded record: its envelope (upcast) and the domain event in it."""

    record: SourceRecord
    envelope: EventEnvelope
    event: Event

    @property
    def stream_id(self) -> str:
        return self.envelope.stream_id


@dataclass(frozen=True)
class Batch:
    """One unit for `Store.apply` (atomic where the store is, see the module docstring).

    `items` are applied in order; `parked` are `(stream_id, record)` kept aside, not applied
    (their stream has a dead-lettered event before them); `blocked` are `(stream_id, record)` of
    the dead-lettered records that block a stream from now on (persist them: the stream stays
    parked after a restart); `checkpoints` maps `(topic, partition)` to the offset of the last
    record of that partition this batch accounts for (applied, skipped, parked or dead-lettered);
    `released` are streams to unblock once the rest is written, their parked records and block
    deleted: an erasure of the stream (`Event.erases_stream`) is among the items, and nothing of
    the person may stay parked (docs/erasure.md).
    """

    items: Sequence[Item]
    parked: Sequence[tuple[str, SourceRecord]] = ()
    blocked: Sequence[tuple[str, SourceRecord]] = ()
    checkpoints: dict[tuple[str, int], int] = field(default_factory=dict)
    released: Sequence[str] = ()


@dataclass(frozen=True)
class Applied:
    """How many of a batch's items changed the read model, and how many were already in it."""

    applied: int
    skipped: int


class Store(Protocol):
    """The write side of one read model, as the runtime uses it."""

    async def start(self) -> None:
        """Connect and prepare (migrations, index templates); idempotent."""

    async def close(self) -> None:
        """Release connections."""

    async def checkpoints(self, topic: str) -> dict[int, int]:
        """Partition → offset of the last record accounted for (seek to it + 1 on assignment)."""

    async def parked_streams(self) -> set[str]:
        """Stream ids parked behind a dead-lettered event (kept across restarts)."""

    async def apply(self, batch: Batch) -> Applied:
        """Write `batch` (atomic, or ordered and idempotent: see the module docstring); raises
        `TransientError` or `PoisonEvent`, after which nothing of the batch is committed that a
        second `apply` of it would not write the same."""


class DeadLetters(Protocol):
    """Where poison records go (the projector's DLQ topic)."""

    async def send(self, record: SourceRecord, error: BaseException) -> None:
        """Publish a bounded copy of `record` (`topics.deadletter.dead_letter`: headers naming its
        source and `error`, original size and sha256); returns once durable."""


def last_offsets(records: Iterable[SourceRecord]) -> dict[tuple[str, int], int]:
    """The highest offset per `(topic, partition)` among `records`."""
    offsets: dict[tuple[str, int], int] = {}
    for record in records:
        where = (record.topic, record.partition)
        offsets[where] = max(offsets.get(where, -1), record.offset)
    return offsets
