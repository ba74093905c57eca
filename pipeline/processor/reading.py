"""Reading partitions of a topic from the beginning to their end (restore, replica, rebuild).

Reads are read_committed and end only once the position has reached the high watermark read when
the read began, so a transaction open on a partition then (a processor that lost it and is
finishing its batch) is waited for rather than missed: its outcome is part of the state. One
begun later is not waited for: a partition that another processor keeps writing (the replica's)
always has one open, and a high watermark read again at each end would be chased for as long as
that load lasts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition


class RestoreTimeout(Exception):
    """A partition did not reach its end within the restore deadline."""


def reached(consumer: Any, topic: str, partition: int, end: int) -> bool:
    """Whether the read position has reached `end` (every record before it read or resolved)."""
    position = consumer.position([TopicPartition(topic, partition)])[0].offset
    return bool(position >= end)


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
    stands, until each of `partitions` has reached the high watermark it had at the call."""
    ends = {p: end for p in partitions if (end := _end(consumer, topic, p)) is not None}
    pending = {p for p, end in ends.items() if not reached(consumer, topic, p, end)}
    while pending:
        if time.monotonic() > deadline:
            raise RestoreTimeout(f"{topic} partitions {sorted(pending)} did not reach their end")
        message = consumer.poll(0.2)
        if message is None:
            continue
        error = message.error()
        if error is None:
            partition = message.partition()
            yield partition, message
            if partition in pending and message.offset() + 1 >= ends[partition]:
                pending.discard(partition)  # every offset before the end read or resolved
        elif error.code() == KafkaError._PARTITION_EOF:
            partition = message.partition()
            if partition in pending and reached(consumer, topic, partition, ends[partition]):
                pending.discard(partition)
        elif error.fatal():
            raise KafkaException(error)


def _end(consumer: Any, topic: str, partition: int) -> int | None:
    """The high watermark to read up to; `None` when the partition is empty."""
    low, high = consumer.get_watermark_offsets(
        TopicPartition(topic, partition), timeout=10, cached=False
    )
    return None if high <= low else int(high)
