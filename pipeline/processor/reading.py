"""Reading partitions of a topic from the beginning to their end (restore, replica, rebuild).

Reads are read_committed and end once the position has reached the partition's high watermark
as a read_uncommitted ListOffsets gave it when the read began (`Watermarks`). A read_committed query
would give the last stable offset (LSO) instead, which stops below a transaction whose commit
marker has not reached this partition's leader yet: the coordinator writes the markers to each
partition's leader separately, so after a group's committed offsets are stable (the previous
owner's `EndTxn` done) the marker of the aggregates partition may still be on its way, and a
read to the LSO would miss that batch and decide on stale state.

So a transaction open on a partition when the read begins (records written, not yet decided) is
waited for until its coordinator commits or aborts it: records of an aborted one and the markers
are skipped by the consumer, which is why the position, not the last record's offset, says when
the end is reached. A stalled writer holds such a read until the coordinator aborts its
transaction (its transaction timeout plus up to the abort check's interval, 10 s), bounded by the
read's own deadline (`RestoreTimeout`). A transaction
begun after the read began is not waited for: a partition that another processor keeps writing
(the replica's) always has one open, and an end read again at each end would be chased for as
long as that load lasts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

RETRY_S = 0.2
"""Pause before asking a partition's high watermark again after a retriable error."""
RENEW_AFTER_S = 1.0
"""How long a watermarks client's queries may keep failing before a new client asks instead."""
LEADERSHIP_MOVING = frozenset({
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.FENCED_LEADER_EPOCH, KafkaError.UNKNOWN_LEADER_EPOCH,
    KafkaError.OFFSET_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError.REQUEST_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN, KafkaError._UNKNOWN_PARTITION,
})
"""Errors of a watermark query while a partition's leadership moves (a node lost or
restarting; `_UNKNOWN_PARTITION` while the client's metadata has no leader for it): librdkafka
does not mark them retriable there, yet asking again succeeds."""


class RestoreTimeout(Exception):
    """A partition did not reach its end within the restore deadline."""


def reached(consumer: Any, topic: str, partition: int, end: int) -> bool:
    """Whether the read position has reached `end` (every record before it read or skipped)."""
    position = consumer.position([TopicPartition(topic, partition)])[0].offset
    return bool(position >= end)


def read_to_end(
    consumer: Any, watermarks: Watermarks, topic: str, partitions: Iterable[int], deadline: float
) -> Iterable[tuple[int, Any]]:
    """Yield `(partition, message)` of `partitions`, read from the beginning, until each ends
    (`consumer` reads read_committed; `watermarks` says where the ends are)."""
    chosen = list(partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in chosen])
    yield from read_on_to_end(consumer, watermarks, topic, chosen, deadline)


def read_on_to_end(
    consumer: Any, watermarks: Watermarks, topic: str, partitions: Iterable[int], deadline: float
) -> Iterable[tuple[int, Any]]:
    """Yield `(partition, message)` of every partition assigned to `consumer`, from where it
    stands, until each of `partitions` has reached the high watermark it had at the call."""
    ends = {p: end for p in partitions
            if (end := watermarks.end_of(topic, p, deadline)) is not None}
    pending = {p for p, end in ends.items() if not reached(consumer, topic, p, end)}
    while pending:
        if time.monotonic() > deadline:
            raise RestoreTimeout(f"{topic} partitions {sorted(pending)} did not reach their end")
        message = consumer.poll(0.2)
        if message is None:
            # Markers and aborted records move the position without a message to return.
            pending = {p for p in pending if not reached(consumer, topic, p, ends[p])}
            continue
        error = message.error()
        if error is None:
            partition = message.partition()
            yield partition, message
            if partition in pending and message.offset() + 1 >= ends[partition]:
                pending.discard(partition)  # the position is past this record
        elif error.code() == KafkaError._PARTITION_EOF:
            # At read_committed, the end of a partition is its LSO: below the end while a
            # transaction open at the start is undecided, so the position decides.
            partition = message.partition()
            if partition in pending and reached(consumer, topic, partition, ends[partition]):
                pending.discard(partition)
        elif error.fatal():
            raise KafkaException(error)


class Watermarks:
    """The ends reads stop at: high watermarks asked of a read_uncommitted client that
    `connect` makes (at the first query, and again after one kept failing).

    ListOffsets is sent at the client's isolation level: a read_committed client would answer
    the LSO (see the module docstring). A client is replaced once its queries have failed for
    `RENEW_AFTER_S`: librdkafka takes a partition whose cached metadata has no leader (its
    leader's node was lost) for a permanent error, answers `_UNKNOWN_PARTITION` at once and
    never asks the cluster again, and a client that subscribes to nothing refreshes that cache
    only every `topic.metadata.refresh.interval.ms` (5 minutes): a restore after a node's
    failover waited for it until its deadline. A new client asks the cluster first."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._client: Any = None

    def end_of(self, topic: str, partition: int, deadline: float) -> int | None:
        """The high watermark to read up to; `None` when the partition is empty.

        A retriable error (the partition's leadership moving: `NOT_LEADER_FOR_PARTITION`,
        `LEADER_NOT_AVAILABLE`, a timeout ...) is asked again until `deadline`, then
        `RestoreTimeout`; any other is raised."""
        failing_since: float | None = None
        while True:
            if self._client is None:
                self._client = self._connect()
            try:
                low, high = self._client.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10, cached=False
                )
            except KafkaException as failed:
                error = failed.args[0] if failed.args else None
                if not isinstance(error, KafkaError) or not (
                        error.retriable() or error.code() in LEADERSHIP_MOVING):
                    raise
                now = time.monotonic()
                if now > deadline:
                    raise RestoreTimeout(
                        f"{topic} partition {partition}: no high watermark ({error.str()})"
                    ) from failed
                if failing_since is None:
                    failing_since = now
                elif now - failing_since >= RENEW_AFTER_S:
                    self.close()
                    failing_since = None
                time.sleep(RETRY_S)
                continue
            return None if high <= low else int(high)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
