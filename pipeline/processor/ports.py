"""The ports of the processor: what the transaction loop needs of Kafka, as small protocols.

The loop (`loop.Processor`) sees only these; `bootstrap.kafka_ports` builds the confluent-kafka
adapters (`adapters`, `transactions`) from a `ProcessorConfig`, and `memory.MemoryBroker` builds
in-memory ones that can inject faults. Every port raises only what its docstring names.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.domain.common import CustomerStatus
from pipeline.processor.records import InboundRecord, OutboundRecord
from pipeline.processor.state import StreamState

PartitionsCallback = Callable[[list[int]], None]


@dataclass(frozen=True)
class TopicPosition:
    """A consumer position: the next offset to read of a topic partition."""

    topic: str
    partition: int
    offset: int


class CommandSource(Protocol):
    """The commands consumer of the group: read_committed, offsets only in transactions.

    Assignment callbacks run inside `poll`/`consume`, as Kafka runs them, and are incremental
    (cooperative rebalancing): `on_revoke` gets only the partitions taken away (or lost),
    `on_assign` only those added, possibly none, after every rebalance; partitions kept keep
    their positions."""

    def subscribe(self, on_assign: PartitionsCallback, on_revoke: PartitionsCallback) -> None: ...
    def poll(self, timeout: float) -> InboundRecord | None: ...
    def consume(self, num_messages: int, timeout: float) -> list[InboundRecord]: ...
    def assignment(self) -> list[int]: ...
    def committed(
        self, partitions: list[int], timeout_s: float = 30.0
    ) -> dict[int, int | None]:
        """The group's committed offset per partition (`None`: nothing committed yet), once
        stable: offsets a transaction sent and has not ended yet are waited for, up to
        `timeout_s`, past which it raises."""
        ...
    def seek(self, partition: int, offset: int | None) -> None:
        """Read `partition` from `offset` next (`None`: from its beginning)."""
        ...
    def group_metadata(self) -> Any: ...
    def lag(self) -> dict[int, int]:
        """Records not yet consumed per owned partition (end offset - position), from what the
        consumer already knows (no request to the broker); a partition whose end or position
        is not known yet is left out."""
        ...
    def close(self) -> None: ...


class ProducerPort(Protocol):
    """The transactional sink. Raises `faults.ProducerFault`s and `faults.ProducerFenced` only;
    after a `FatalFault` only `reset` may be called (a new producer, same transactional id)."""

    def begin(self) -> None: ...
    def produce(self, record: OutboundRecord) -> None: ...
    def send_offsets(self, offsets: list[TopicPosition], group_metadata: Any) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...
    def reset(self) -> None: ...


ProducerFactory = Callable[[dict[str, Any]], ProducerPort]
"""Builds the sink from `ProcessorConfig.producer()` (its transactional id among them)."""


class PartitionReader(Protocol):
    """Committed records of partitions of a topic, from the beginning to the high watermark
    each had when the read began (a transaction open there then is waited for until it is
    committed or aborted): the snapshot reader of a restore and the events reader of a rebuild.
    Raises on a timeout."""

    def read(
        self, topic: str, partitions: list[int], timeout_s: float
    ) -> Iterator[InboundRecord]: ...


class SnapshotTail(Protocol):
    """Committed records of chosen partitions of the aggregates topic, each from a chosen offset,
    tailed without waiting (what feeds `replica.CustomerReplica`)."""

    def assign(self, starts: Mapping[int, int]) -> None:
        """Read exactly these partitions from now on, each from its offset (0: its beginning);
        records of other partitions are no longer returned."""
        ...
    def catch_up(self, partitions: Collection[int], timeout_s: float) -> Iterator[InboundRecord]:
        """Records of the assigned partitions until each of `partitions` has reached the high
        watermark it had at the call (as `PartitionReader.read`); raises
        `reading.RestoreTimeout` past `timeout_s`."""
        ...
    def poll(self, max_records: int) -> list[InboundRecord]: ...
    def close(self) -> None: ...


class UsersReplica(Protocol):
    """The users of the partitions this process does not own, eventually consistent, for the
    cross-aggregate rule of orders (the owned ones are in the processor's state)."""

    def follow(self, partitions: int, owned: Collection[int], timeout_s: float) -> None: ...
    def hand_over(
        self, partition: int, streams: Iterable[StreamState], resume_at: int
    ) -> None: ...
    def poll(self, max_messages: int = 5000) -> int: ...
    def status(self, partition: int, user_id: str) -> CustomerStatus | None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class ProcessorPorts:
    """Everything the loop uses of Kafka, built by one composition root."""

    commands: CommandSource
    producer_factory: ProducerFactory
    reader: PartitionReader
    replica: UsersReplica
    partition_count: Callable[[], int]
    """The commands topic's partition count, checked against the other topics."""
