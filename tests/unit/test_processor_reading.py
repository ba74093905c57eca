"""Reading to the end: the high watermark of the read's start, waited for, never chased.

The fake partition answers ListOffsets as Kafka does: the last stable offset (LSO) to a
read_committed client, the high watermark to a read_uncommitted one; its read_committed consumer
returns records below the LSO only and skips commit markers and aborted records, moving its
position past them without a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from pipeline.processor import reading
from pipeline.processor.reading import RestoreTimeout, Watermarks, read_on_to_end


@dataclass
class Message:
    """A record (`eof` False) or an end-of-partition event of partition 0."""

    at: int
    eof: bool = False

    def error(self) -> Any:
        return KafkaError(KafkaError._PARTITION_EOF) if self.eof else None

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self.at


@dataclass
class Position:
    offset: int


@dataclass
class Partition:
    """One partition's log: records, and transactions open or decided by a marker.

    `writer` runs before each poll of the reading consumer (another processor, a coordinator)."""

    high: int = 0
    open_from: int | None = None
    """The first offset of the open transaction, if one is open: the LSO."""
    skipped: set[int] = field(default_factory=set)
    """Offsets a read_committed consumer never returns: markers, aborted records."""
    writer: Callable[[Partition], None] = lambda partition: None

    @property
    def stable(self) -> int:
        return self.high if self.open_from is None else self.open_from

    def write(self, records: int) -> None:
        if self.open_from is None:
            self.open_from = self.high
        self.high += records

    def commit(self) -> None:
        self._marker()

    def abort(self) -> None:
        assert self.open_from is not None
        self.skipped.update(range(self.open_from, self.high))
        self._marker()

    def _marker(self) -> None:
        assert self.open_from is not None
        self.skipped.add(self.high)
        self.high += 1
        self.open_from = None

    def client(self, isolation: str) -> Client:
        return Client(self, isolation)


class Client:
    """A consumer of the partition at `isolation`; only the read_committed one polls."""

    def __init__(self, partition: Partition, isolation: str) -> None:
        self.partition, self.isolation = partition, isolation
        self.at = 0

    def get_watermark_offsets(self, tp: Any, timeout: float, cached: bool) -> tuple[int, int]:
        log = self.partition
        return 0, log.stable if self.isolation == "read_committed" else log.high

    def position(self, tps: list[Any]) -> list[Position]:
        return [Position(self.at)]

    def poll(self, timeout: float) -> Message:
        assert self.isolation == "read_committed"
        self.partition.writer(self.partition)
        while self.at < self.partition.stable and self.at in self.partition.skipped:
            self.at += 1
        if self.at < self.partition.stable:
            self.at += 1
            return Message(self.at - 1)
        return Message(self.at, eof=True)


def read(partition: Partition, timeout: float = 5, at: int = 0) -> list[int]:
    consumer = partition.client("read_committed")
    consumer.at = at
    watermarks = Watermarks(lambda: partition.client("read_uncommitted"))
    found = read_on_to_end(consumer, watermarks, "a", [0], time.monotonic() + timeout)
    return [message.offset() for _, message in found]


def decided_after(polls: int, decide: Callable[[Partition], None]) -> Callable[[Partition], None]:
    """A writer that decides the open transaction at the `polls`-th poll."""
    count = 0

    def writer(partition: Partition) -> None:
        nonlocal count
        count += 1
        if count == polls:
            decide(partition)

    return writer


def test_a_transaction_whose_marker_has_not_landed_is_waited_for_and_read() -> None:
    # The previous owner's batch: its offsets are stable, its marker not yet on this partition.
    partition = Partition(high=10)
    partition.write(5)
    partition.writer = decided_after(20, Partition.commit)
    assert partition.client("read_committed").get_watermark_offsets(None, 10, False) == (0, 10)
    assert read(partition) == list(range(15))


def test_a_partition_that_ends_in_an_aborted_transaction_ends_at_its_position() -> None:
    partition = Partition(high=10)
    partition.write(5)
    partition.writer = decided_after(3, Partition.abort)
    assert read(partition) == list(range(10))  # the end (16) is past the last record read


def test_a_partition_written_on_is_read_to_the_end_it_had_not_chased() -> None:
    polls = 0

    def busy(partition: Partition) -> None:
        """One transaction always open: 3 records a poll, committed every other poll."""
        nonlocal polls
        polls += 1
        if polls % 2 == 0:
            partition.commit()
            partition.write(3)
        else:
            partition.write(3)

    partition = Partition(high=100)
    partition.write(5)
    partition.writer = busy
    offsets = read(partition)
    assert offsets[:105] == list(range(105))  # the transaction open at the start, waited for
    assert len(offsets) < 200


def test_a_transaction_open_at_the_start_that_stays_open_times_out() -> None:
    stuck = Partition(high=100)
    stuck.write(5)
    with pytest.raises(RestoreTimeout):
        read(stuck, timeout=0.3)


def test_an_empty_partition_or_one_read_already_is_not_waited_for() -> None:
    assert read(Partition()) == []
    assert read(Partition(high=10), at=10) == []


class MovingLeader(Client):
    """A read_uncommitted client whose watermark query fails while the partition's leadership
    moves (as librdkafka raises it: not marked retriable), `failures` times, or for good."""

    def __init__(self, partition: Partition, failures: int | None, code: int) -> None:
        super().__init__(partition, "read_uncommitted")
        self.failures, self.code = failures, code
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def get_watermark_offsets(self, tp: Any, timeout: float, cached: bool) -> tuple[int, int]:
        if self.failures is None or self.failures > 0:
            if self.failures is not None:
                self.failures -= 1
            raise KafkaException(KafkaError(self.code, "Failed to get watermark offsets"))
        return super().get_watermark_offsets(tp, timeout, cached)


def test_a_leader_moving_is_asked_again_until_the_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "RETRY_S", 0.01)
    partition = Partition(high=4)
    moving = MovingLeader(partition, 3, KafkaError.NOT_LEADER_FOR_PARTITION)
    found = read_on_to_end(partition.client("read_committed"), Watermarks(lambda: moving),
                           "a", [0], time.monotonic() + 5)
    assert [message.offset() for _, message in found] == [0, 1, 2, 3]
    gone = MovingLeader(partition, None, KafkaError.LEADER_NOT_AVAILABLE)
    with pytest.raises(RestoreTimeout, match="no high watermark"):
        list(read_on_to_end(partition.client("read_committed"),
                            Watermarks(lambda: gone), "a", [0],
                            time.monotonic() + 0.1))
    refused = MovingLeader(partition, None, KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        list(read_on_to_end(partition.client("read_committed"),
                            Watermarks(lambda: refused), "a", [0],
                            time.monotonic() + 5))


def test_a_client_stuck_without_a_leader_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    # librdkafka answers _UNKNOWN_PARTITION from its cache, for good, once the cached leader
    # of the partition is gone; a new client asks the cluster.
    monkeypatch.setattr(reading, "RETRY_S", 0.01)
    monkeypatch.setattr(reading, "RENEW_AFTER_S", 0.05)
    partition = Partition(high=3)
    made: list[MovingLeader] = []

    def connect() -> MovingLeader:
        made.append(MovingLeader(partition, None if not made else 0,
                                 KafkaError._UNKNOWN_PARTITION))
        return made[-1]

    watermarks = Watermarks(connect)
    found = read_on_to_end(partition.client("read_committed"), watermarks, "a", [0],
                           time.monotonic() + 5)
    assert [message.offset() for _, message in found] == [0, 1, 2]
    assert len(made) == 2
    assert made[0].closed
