"""A projector's Prometheus metrics, on a registry its composition root passes in.

Names and labels are the observability spec's (every metric carries `prefix`, the topic prefix,
and `projector`, its name); base units, counters end in `_total`. `BatchProcessor` counts records
per outcome, batch sizes, store commit durations, event ages and transient faults; the app sets
the rebalances, lag, DLQ depth and parked streams (`projections.runtime.app`). The registry is
never prometheus-client's global one, so several projectors (or tests) in one process never clash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OUTCOMES = ("applied", "skipped", "parked", "dead_lettered")
"""`cqrs_projector_records_total`'s outcomes: every consumed record ends as exactly one."""

BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000)
AGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400)


@dataclass(frozen=True)
class PartitionOffsets:
    """What the consumer knows of one assigned partition of the events topic.

    `end`: the high watermark of the last fetch (next offset to be written); `position`: the
    next offset the consumer hands over; `delivered`: the last offset handed to the agent since
    the partition was last seeked (`None`: none yet). Any of them `None` while unknown."""

    end: int | None
    position: int | None
    delivered: int | None


def records_behind(offsets: PartitionOffsets, checkpoint: int | None) -> int | None:
    """Records between the store's checkpoint and the end: end - checkpoint - 1.

    Transaction markers take offsets too, so on a transactional topic that difference never
    reaches 0 (the commit marker after the last event stays). When everything the consumer
    handed over is applied (`delivered` is none or at most the checkpoint), the offsets between
    the checkpoint and the consumer's position are markers, so the lag is end - position."""
    if offsets.end is None:
        return None
    next_offset = -1 if checkpoint is None else checkpoint
    behind = offsets.end - next_offset - 1
    drained = offsets.delivered is None or (
        checkpoint is not None and offsets.delivered <= checkpoint)
    if drained and offsets.position is not None:
        behind = min(behind, offsets.end - offsets.position)
    return max(0, behind)


class ProjectorMetrics:
    """The `cqrs_projector_*` metrics of projector `projector` under topic prefix `prefix`."""

    def __init__(self, registry: CollectorRegistry, prefix: str, projector: str) -> None:
        self.registry = registry
        self._labels = (prefix, projector)
        names = ["prefix", "projector"]
        self._records = Counter(
            "cqrs_projector_records_total", "Records consumed, by outcome.",
            [*names, "outcome"], registry=registry)
        self._batch_size = Histogram(
            "cqrs_projector_batch_size", "Records per batch handed to the processor.",
            names, buckets=BATCH_BUCKETS, registry=registry).labels(*self._labels)
        self._commit = Histogram(
            "cqrs_projector_store_commit_duration_seconds",
            "Duration of a successful store apply (one transaction or bulk write).",
            names, registry=registry).labels(*self._labels)
        self._age = Histogram(
            "cqrs_projector_event_age_seconds",
            "Now minus occurred_at of the last event of a partition in a committed batch "
            "(one observation per partition per batch).",
            names, buckets=AGE_BUCKETS, registry=registry).labels(*self._labels)
        self._lag = Gauge(
            "cqrs_projector_lag", "Records behind: end offset - checkpoint - 1, per partition.",
            [*names, "partition"], registry=registry)
        self._lag_seconds = Gauge(
            "cqrs_projector_lag_seconds",
            "Age of the oldest unapplied event, approximated per lagging partition: now - "
            "occurred_at of the last applied event if a batch was applied since the lag was "
            "first seen, else now - when the lag was first seen; 0 when caught up.",
            names, registry=registry,
        ).labels(*self._labels)
        # No child until the first read: a 0 before it would be a reading nobody made.
        self._dlq_depth = Gauge(
            "cqrs_projector_dlq_depth",
            "Records in the projector's DLQ topic (end - start); absent until first read.",
            names, registry=registry)
        self._parked = Gauge(
            "cqrs_projector_parked_streams", "Streams parked behind a dead-lettered event.",
            names, registry=registry).labels(*self._labels)
        self._transient = Counter(
            "cqrs_projector_transient_faults_total",
            "Transient faults (store, DLQ, broker reads) retried with backoff.",
            names, registry=registry).labels(*self._labels)
        self._rebalances = Counter(
            "cqrs_projector_rebalances_total", "Consumer group rebalances this process saw.",
            names, registry=registry).labels(*self._labels)
        up = Gauge("cqrs_projector_up", "1 while the projector process runs.", names,
                   registry=registry)
        up.labels(*self._labels).set(1)
        for outcome in OUTCOMES:  # every outcome present from the start, at 0
            self._records.labels(*self._labels, outcome)
        self._lagging: set[int] = set()

    def count(self, outcome: str, records: int) -> None:
        if records:
            self._records.labels(*self._labels, outcome).inc(records)

    def batch(self, size: int) -> None:
        self._batch_size.observe(size)

    def committed(self, seconds: float) -> None:
        self._commit.observe(seconds)

    def event_ages(self, seconds: Iterable[float]) -> None:
        for age in seconds:
            self._age.observe(max(0.0, age))

    def transient_fault(self) -> None:
        self._transient.inc()

    def rebalance(self) -> None:
        self._rebalances.inc()

    def parked_streams(self, count: int) -> None:
        self._parked.set(count)

    def dlq_depth(self, records: int) -> None:
        self._dlq_depth.labels(*self._labels).set(records)

    def lag(self, behind: Mapping[int, int], seconds: float) -> None:
        """Set the lag of the partitions in `behind` (the assigned ones); drop the others'."""
        for partition in self._lagging - set(behind):
            self._lag.remove(*self._labels, str(partition))
        for partition, records in behind.items():
            self._lag.labels(*self._labels, str(partition)).set(records)
        self._lagging = set(behind)
        self._lag_seconds.set(max(0.0, seconds))
