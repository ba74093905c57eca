"""Reading partitions of a topic from the beginning to their end (restore, replica, rebuild).

Reads are read_committed and end only once the position has reached the high watermark (re-read
on each end-of-partition), so a transaction still open on a partition (a processor that lost it
and is finishing its batch) is waited for rather than missed: its outcome is part of the state.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition


class RestoreTimeout(Exception):
    """A partition did not reach its end within the restore deadline."""


def reached_end(consumer: Any, topic: str, partition: int) -> bool:
    """Whether the read position has reached the high watermark (committed and resolved)."""
    tp = TopicPartition(topic, partition)
    _, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
    position = consumer.position([tp])[0].offset
    return bool(high <= 0 or position >= high)


def read_to_end(
    consumer: Any, topic: str, partitions: Iterable[int], deadline: float
) -> Iterable[tuple[int, Any]]:
    """Yield `(partition, message)` of `partitions`, read from the beginning, until each ends."""
    chosen = list(partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in chosen])
    yield from read_on_to_end(consumer, topic, chosen, deadline)


def read_on_to_end(
    consumer: Any, topic: str, partitions: Iterable[int], deadline: float
) -> Iterable[tuple[int, Any]]:
    """Yield `(partition, message)` of every partition assigned to `consumer`, from where it
    stands, until each of `partitions` has reached its end."""
    pending = {p for p in partitions if not _empty(consumer, topic, p)}
    while pending:
        if time.monotonic() > deadline:
            raise RestoreTimeout(f"{topic} partitions {sorted(pending)} did not reach their end")
        message = consumer.poll(0.2)
        if message is None:
            continue
        error = message.error()
        if error is None:
            yield message.partition(), message
        elif error.code() == KafkaError._PARTITION_EOF:
            if reached_end(consumer, topic, message.partition()):
                pending.discard(message.partition())
        elif error.fatal():
            raise KafkaException(error)


def _empty(consumer: Any, topic: str, partition: int) -> bool:
    low, high = consumer.get_watermark_offsets(
        TopicPartition(topic, partition), timeout=10, cached=False
    )
    return bool(high <= low)
