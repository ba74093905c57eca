"""The projector's periodic gauges: lag per partition, lag in seconds, DLQ depth, parked streams.

`Refresher.refresh` runs every `REFRESH_INTERVAL` seconds on the app's event loop (a Faust timer,
`make_projector_app`). Lag costs nothing: the consumer's high watermarks come with its fetches
(`ProjectorApp.partition_offsets`) and the checkpoints are the processor's. The DLQ depth is one
admin request (earliest and latest offsets of the DLQ topic), at most every `DLQ_INTERVAL`
seconds. Each tick also beats `ProjectorHealth` while no batch is in progress: the loop is idle,
waiting for records, and the event loop turns. A failing read is logged and leaves the gauge as it
was; nothing here can stop the projector. The DLQ depth gauge has no sample before its first
read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from projections.runtime.metrics import PartitionOffsets, records_behind
from projections.runtime.processor import BatchProcessor
from topics import KafkaConnection

logger = logging.getLogger("projections.runtime")

REFRESH_INTERVAL = 2.0
DLQ_INTERVAL = 10.0

OffsetsSource = Callable[[], Mapping[int, PartitionOffsets]]
"""The assigned partitions of the events topic and what the consumer knows of each."""
DepthSource = Callable[[], Awaitable[int]]


class Refresher:
    """Sets the lag, lag_seconds, DLQ depth and parked-streams gauges of `processor.metrics`."""

    def __init__(self, processor: BatchProcessor, topic: str, offsets: OffsetsSource,
                 dlq_depth: DepthSource | None, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 dlq_interval: float = DLQ_INTERVAL) -> None:
        self._processor = processor
        self._topic = topic
        self._offsets = offsets
        self._dlq_depth = dlq_depth
        self._clock = clock
        self._monotonic = monotonic
        self._dlq_interval = dlq_interval
        self._dlq_read_at: float | None = None
        self._lag_seen: dict[int, tuple[float, int | None]] = {}
        """Per lagging partition: when its lag was first seen above 0, and its checkpoint then."""

    async def refresh(self) -> None:
        """One tick; never raises (a timer task that raised would stop the app)."""
        processor = self._processor
        processor.health.idle_beat()
        try:
            self.refresh_lag()
            processor.metrics.parked_streams(len(processor.parked_streams))
            await self._refresh_dlq()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.warning("metrics refresh failed: %s: %s", type(error).__name__, error)

    def refresh_lag(self) -> None:
        """Lag per partition, and `lag_seconds`: the largest `unapplied_age` of a lagging one."""
        processor, now = self._processor, self._clock()
        behind: dict[int, int] = {}
        oldest = 0.0
        for partition, offsets in self._offsets().items():
            checkpoint = processor.checkpoint(self._topic, partition)
            lag = records_behind(offsets, checkpoint)
            if lag is None:
                continue
            behind[partition] = lag
            if lag == 0:
                self._lag_seen.pop(partition, None)
                continue
            seen_at, checkpoint_then = self._lag_seen.setdefault(partition, (now, checkpoint))
            applied_at = processor.last_applied_at(self._topic, partition)
            oldest = max(oldest, unapplied_age(now, seen_at, checkpoint_then != checkpoint,
                                               applied_at))
        for partition in set(self._lag_seen) - set(behind):  # revoked
            del self._lag_seen[partition]
        processor.metrics.lag(behind, oldest)

    async def _refresh_dlq(self) -> None:
        if self._dlq_depth is None:
            return
        now = self._monotonic()
        if self._dlq_read_at is not None and now - self._dlq_read_at < self._dlq_interval:
            return
        self._dlq_read_at = now
        self._processor.metrics.dlq_depth(await self._dlq_depth())


def unapplied_age(now: float, lag_seen_at: float, applied_since: bool,
                  last_applied_at: float | None) -> float:
    """The age of a lagging partition's oldest unapplied event, approximated without a fetch.

    Exact would be the Kafka timestamp of the record at checkpoint + 1. Instead: when a batch
    was applied since the lag was first seen (and its events' time is known), now - `occurred_at`
    of the last applied event (the next one is at least about as old); otherwise now - when the
    lag was first seen above 0, which never spikes when a record was just fetched after a quiet
    spell, nor reads 0 while a process that has applied nothing yet lags behind (it
    under-reports a backlog found at start by the backlog's age until the first apply)."""
    if applied_since and last_applied_at is not None:
        return max(0.0, now - last_applied_at)
    return max(0.0, now - lag_seen_at)


def dlq_depth_reader(kafka: KafkaConnection, topic: str, timeout: float = 5.0) -> DepthSource:
    """Records in `topic` now: the sum over partitions of latest - earliest offset (one admin
    client, kept; each read runs in a worker thread)."""
    admin: AdminClient | None = None

    def read() -> int:
        nonlocal admin
        if admin is None:
            admin = AdminClient(dict(kafka.client_config()))
        found = admin.list_topics(topic, timeout=timeout).topics.get(topic)
        if found is None or found.error is not None:
            raise LookupError(f"topic {topic} not found")
        partitions = [TopicPartition(topic, p) for p in found.partitions]
        ends = _offsets(admin, partitions, OffsetSpec.latest(), timeout)  # type: ignore[no-untyped-call]
        starts = _offsets(admin, partitions, OffsetSpec.earliest(), timeout)  # type: ignore[no-untyped-call]
        return sum(max(0, ends[p] - starts.get(p, 0)) for p in ends)

    async def depth() -> int:
        return await asyncio.to_thread(read)

    return depth


def _offsets(admin: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec,
             timeout: float) -> dict[int, int]:
    futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=timeout)
    return {tp.partition: future.result(timeout).offset for tp, future in futures.items()}
