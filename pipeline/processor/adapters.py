"""The confluent-kafka adapters of the processor's read ports (the sink is in `transactions`).

Each wraps one confluent-kafka `Consumer` and hands the loop plain `InboundRecord`s; consume
errors (not record content: the client reports transport and partition errors this way) are
logged here and never reach the loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator, Mapping
from functools import partial
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from pipeline.processor.ports import PartitionsCallback
from pipeline.processor.reading import Watermarks, read_on_to_end, read_to_end
from pipeline.processor.records import InboundRecord

log = logging.getLogger(__name__)


def inbound(message: Any) -> InboundRecord:
    """A confluent-kafka `Message` as plain data.

    Headers are read once, inside a try: a header name that is not UTF-8 (kcat or librdkafka C
    can write one) makes `Message.headers()` raise `SystemError`, and return a `NULL` name on a
    second call. Such a record gets no headers and `unreadable_headers` says why, so the loop
    dead-letters it instead of the process dying on it at every restart."""
    headers, unreadable = _headers(message)
    return InboundRecord(
        message.topic(),
        message.partition(),
        message.offset(),
        message.key(),
        message.value(),
        headers,
        unreadable,
    )


def _headers(message: Any) -> tuple[list[tuple[str, bytes | None]], str | None]:
    """The message's headers, or none and the reason they cannot be read."""
    try:
        raw = message.headers()
        if not raw:
            return [], None
        headers = list(raw)
        for name, value in headers:
            if not isinstance(name, str) or (value is not None and not isinstance(value, bytes)):
                raise TypeError(
                    f"a header is {type(name).__name__}={type(value).__name__}, "
                    "not str=bytes"
                )
    except Exception as error:
        reason = f"headers cannot be read ({type(error).__name__}: {error})"
        log.warning(
            "unreadable headers",
            extra={"partition": message.partition(), "offset": message.offset(),
                   "error": reason},
        )
        return [], reason
    return headers, None


def _records(messages: list[Any]) -> list[InboundRecord]:
    records = []
    for message in messages:
        error = message.error()
        if error is None:
            records.append(inbound(message))
        else:
            log.warning("consume error", extra={"error": str(error)})
    return records


class KafkaCommandSource:
    """`ports.CommandSource` over a subscribed confluent-kafka consumer of the commands topic."""

    def __init__(self, config: dict[str, Any], topic: str) -> None:
        self._config = config
        self._topic = topic
        self._consumer: Any = None

    def subscribe(self, on_assign: PartitionsCallback, on_revoke: PartitionsCallback) -> None:
        def assigned(consumer: Any, partitions: list[Any]) -> None:
            on_assign([tp.partition for tp in partitions])

        def revoked(consumer: Any, partitions: list[Any]) -> None:
            on_revoke([tp.partition for tp in partitions])

        self._consumer = Consumer(self._config)
        self._consumer.subscribe(
            [self._topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked
        )

    def poll(self, timeout: float) -> InboundRecord | None:
        message = self._consumer.poll(timeout)
        if message is None:
            return None
        found = _records([message])
        return found[0] if found else None

    def consume(self, num_messages: int, timeout: float) -> list[InboundRecord]:
        return _records(self._consumer.consume(num_messages=num_messages, timeout=timeout))

    def assignment(self) -> list[int]:
        return [tp.partition for tp in self._consumer.assignment()]

    def committed(
        self, partitions: list[int], timeout_s: float = 30.0
    ) -> dict[int, int | None]:
        # A read_committed consumer's OffsetFetch asks for stable offsets (KIP-447
        # RequireStable): the broker answers UNSTABLE_OFFSET_COMMIT while a transaction that
        # sent offsets of a partition is open, and librdkafka retries until it ended (measured
        # in tests/integration/test_processor_zombie.py) or the timeout passed (then raises).
        # Errors of single partitions come back on each TopicPartition, not raised: one left
        # there (UNSTABLE_OFFSET_COMMIT among them) is not an answer, stable or not.
        # A coordinator moving (a node lost or restarting) is asked again within `timeout_s`.
        asked = [TopicPartition(self._topic, partition) for partition in partitions]
        deadline = time.monotonic() + timeout_s
        while True:
            left = max(deadline - time.monotonic(), 0.1)
            try:
                answered = self._consumer.committed(asked, timeout=left)
            except KafkaException as raised:
                error = raised.args[0] if raised.args else None
                if not _coordinator_moving(error) or time.monotonic() >= deadline:
                    raise
                time.sleep(COMMITTED_RETRY_S)
                continue
            failed = [tp.error for tp in answered if tp.error is not None]
            if not failed:
                return {tp.partition: tp.offset if tp.offset >= 0 else None for tp in answered}
            if not all(map(_coordinator_moving, failed)) or time.monotonic() >= deadline:
                raise KafkaException(failed[0])
            time.sleep(COMMITTED_RETRY_S)

    def seek(self, partition: int, offset: int | None) -> None:
        position = OFFSET_BEGINNING if offset is None else offset
        self._consumer.seek(TopicPartition(self._topic, partition, position))

    def group_metadata(self) -> Any:
        return self._consumer.consumer_group_metadata()

    def lag(self) -> dict[int, int]:
        """From the client's cached high watermarks (updated by its fetches) and its local
        positions: no request to the broker."""
        if self._consumer is None:
            return {}
        positions = self._consumer.position(self._consumer.assignment())
        behind: dict[int, int] = {}
        for tp in positions:
            _, high = self._consumer.get_watermark_offsets(tp, cached=True) or (-1, -1)
            if tp.offset >= 0 and high >= 0:
                behind[tp.partition] = max(high - tp.offset, 0)
        return behind

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()


def _watermarks(config: dict[str, Any]) -> Watermarks:
    """The ends of reads, from read_uncommitted consumers that only ask for high watermarks."""
    return Watermarks(partial(Consumer, {
        **config, "isolation.level": "read_uncommitted",
        "client.id": f"{config.get('client.id', 'reader')}-watermarks"}))


class KafkaPartitionReader:
    """`ports.PartitionReader`: a group-less read_committed consumer per read (see `reading`),
    and one read_uncommitted consumer for the ends of every read (`reading.Watermarks`)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._watermarks = _watermarks(config)

    def read(self, topic: str, partitions: list[int], timeout_s: float) -> Iterator[InboundRecord]:
        consumer = Consumer(self._config)
        try:
            deadline = time.monotonic() + timeout_s
            for _, message in read_to_end(consumer, self._watermarks, topic, partitions,
                                          deadline):
                yield inbound(message)
        finally:
            consumer.close()


class KafkaSnapshotTail:
    """`ports.SnapshotTail`: one group-less consumer, assigned the partitions to follow.

    `assign` reaches the consumer at the next `catch_up` or `poll`, so the revocation and the
    assignment of one rebalance make one assignment; no consumer exists while none is followed
    (a process that owns every partition reads nothing here)."""

    def __init__(self, config: dict[str, Any], topic: str) -> None:
        self._config = config
        self._topic = topic
        self._consumer: Any = None
        self._watermarks = _watermarks(config)
        self._starts: dict[int, int] | None = None

    def assign(self, starts: Mapping[int, int]) -> None:
        self._starts = dict(starts)

    def _assigned(self) -> Any:
        """The consumer with the latest `assign` applied; `None` while none was needed."""
        if self._starts is None:
            return self._consumer
        starts, self._starts = self._starts, None
        if self._consumer is None and starts:
            self._consumer = Consumer(self._config)
        if self._consumer is not None:
            # Offset 0 is "the beginning": a compacted topic's first record may be later.
            self._consumer.assign([
                TopicPartition(self._topic, partition, offset or OFFSET_BEGINNING)
                for partition, offset in sorted(starts.items())
            ])
        return self._consumer

    def catch_up(self, partitions: Collection[int], timeout_s: float) -> Iterator[InboundRecord]:
        consumer = self._assigned()
        if consumer is None:
            return
        deadline = time.monotonic() + timeout_s
        for _, message in read_on_to_end(consumer, self._watermarks, self._topic, partitions,
                                         deadline):
            yield inbound(message)

    def poll(self, max_records: int) -> list[InboundRecord]:
        consumer = self._assigned()
        if consumer is None:
            return []
        messages = consumer.consume(num_messages=max_records, timeout=0)
        return [inbound(message) for message in messages if message.error() is None]

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        self._watermarks.close()


COMMITTED_RETRY_S = 0.2
"""Pause before asking the group's committed offsets again while its coordinator moves."""
_COORDINATOR_MOVING = frozenset({
    KafkaError.UNSTABLE_OFFSET_COMMIT, KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.REQUEST_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TRANSPORT,
})


def _coordinator_moving(error: object) -> bool:
    """An answer of an offset fetch that asking again, later, may change: the coordinator
    moving or loading, a transaction still holding the offsets (librdkafka marks few of those
    retriable)."""
    return isinstance(error, KafkaError) and (
        error.retriable() or error.code() in _COORDINATOR_MOVING)
