"""The processor's Prometheus metrics, on a registry it is given (never the global default one).

Names and labels follow the observability spec (docs/processor.md, "Metrics and health"): every
metric has the label `prefix` (the topic prefix); counts are of committed transactions only, as
in `ProcessorCounts`, so a batch that aborted or was lost to a producer restart counts nothing
but the abort or the restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pipeline.processor.counters import ProcessorCounts

OUTCOMES: tuple[str, ...] = (
    "accepted", "rejected", "duplicate", "dead_lettered", "forwarded", "skipped",
)
"""Every `counters.ProcessorCounts` outcome: each has its series from the start, at 0."""
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
TRANSACTION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)
RESTORE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
LAG_INTERVAL_S = 1.0
"""Consumer lag is sampled at most this often (from what the consumer already knows)."""


class ProcessorMetrics:
    """The metrics of one processor process, updated by `loop.Processor` between transactions.

    Thread safety: prometheus-client's metrics may be read (scraped) from another thread."""

    def __init__(
        self,
        registry: CollectorRegistry,
        prefix: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.prefix = prefix
        self._monotonic = monotonic
        self._lag_sampled: float | None = None
        self._lag_partitions: set[int] = set()
        labels = ["prefix"]

        def counter(name: str, doc: str, extra: Iterable[str] = ()) -> Counter:
            return Counter(name, doc, [*labels, *extra], registry=registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, labels, registry=registry, buckets=buckets)

        def gauge(name: str, doc: str, extra: Iterable[str] = ()) -> Gauge:
            return Gauge(name, doc, [*labels, *extra], registry=registry)

        records = counter(
            "cqrs_processor_records", "Command records by outcome (committed)", ["outcome"]
        )
        self._records = {outcome: records.labels(prefix, outcome) for outcome in OUTCOMES}
        self._events = counter("cqrs_processor_events", "Events written (committed)").labels(
            prefix
        )
        self._batch = histogram(
            "cqrs_processor_batch_size", "Command records per committed transaction",
            BATCH_BUCKETS,
        ).labels(prefix)
        self._transaction = histogram(
            "cqrs_processor_transaction_duration_seconds",
            "Begin to commit of committed transactions", TRANSACTION_BUCKETS,
        ).labels(prefix)
        self._aborted = counter(
            "cqrs_processor_aborted_transactions", "Transactions aborted (then rewound)"
        ).labels(prefix)
        self._restarts = counter(
            "cqrs_processor_producer_restarts",
            "Producers dropped and started again (fatal fault or commit outcome unknown)",
        ).labels(prefix)
        self._rebalances = counter(
            "cqrs_processor_rebalances", "Partition assignments received (the first included)"
        ).labels(prefix)
        self._restore = histogram(
            "cqrs_processor_restore_duration_seconds",
            "Restores of stream states from the aggregates topic", RESTORE_BUCKETS,
        ).labels(prefix)
        self._stable_wait = histogram(
            "cqrs_processor_stable_offsets_wait_seconds",
            "Waits at assignment until no open transaction held offsets of the assigned "
            "partitions (a previous owner's, stalled)", RESTORE_BUCKETS,
        ).labels(prefix)
        self._restored = gauge(
            "cqrs_processor_restored_streams", "Streams loaded by the latest restore"
        ).labels(prefix)
        self._lag = gauge(
            "cqrs_processor_consumer_lag",
            "Commands not yet consumed per owned partition (high watermark - position)",
            ["partition"],
        )
        self._streams = gauge(
            "cqrs_processor_streams",
            "Stream states of the owned partitions, in memory or spilled to the local file "
            "(CQRS_PROCESSOR_MAX_RESIDENT_STREAMS)", ["where"],
        )
        self._streams_sampled: float | None = None
        gauge("cqrs_processor_up", "1 while the process runs").labels(prefix).set(1)

    def committed(self, counts: ProcessorCounts, records: int, seconds: float) -> None:
        """A transaction of `records` command records committed after `seconds` (begin→commit)."""
        for outcome, child in self._records.items():
            value = getattr(counts, outcome)
            if value:
                child.inc(value)
        if counts.events:
            self._events.inc(counts.events)
        self._batch.observe(records)
        self._transaction.observe(seconds)

    def aborted(self) -> None:
        self._aborted.inc()

    def producer_restarted(self) -> None:
        self._restarts.inc()

    def assigned(self) -> None:
        self._rebalances.inc()

    def offsets_stable(self, seconds: float) -> None:
        self._stable_wait.observe(seconds)

    def restored(self, seconds: float, streams: int) -> None:
        self._restore.observe(seconds)
        self._restored.set(streams)

    def sample_lag(self, lag: Callable[[], dict[int, int]], force: bool = False) -> None:
        """Set the lag gauges from `lag()` (partition → records behind), called at most once
        per `LAG_INTERVAL_S` unless `force`d; partitions no longer owned lose their gauge."""
        now = self._monotonic()
        due = self._lag_sampled is None or now - self._lag_sampled >= LAG_INTERVAL_S
        if not (due or force):
            return
        self._lag_sampled = now
        behind = lag()
        for partition in self._lag_partitions - behind.keys():
            self._lag.remove(self.prefix, str(partition))
        for partition, records in behind.items():
            self._lag.labels(self.prefix, str(partition)).set(max(records, 0))
        self._lag_partitions = set(behind)

    def sample_streams(self, counts: Callable[[], tuple[int, int]]) -> None:
        """Set the streams gauges from `counts()` (in memory, spilled), at most once per
        `LAG_INTERVAL_S`."""
        now = self._monotonic()
        if self._streams_sampled is not None and now - self._streams_sampled < LAG_INTERVAL_S:
            return
        self._streams_sampled = now
        resident, spilled = counts()
        self._streams.labels(self.prefix, "memory").set(resident)
        self._streams.labels(self.prefix, "disk").set(spilled)

    def revoked(self, partitions: Iterable[int]) -> None:
        """Forget the lag of partitions this process no longer owns."""
        for partition in set(partitions) & self._lag_partitions:
            self._lag.remove(self.prefix, str(partition))
            self._lag_partitions.discard(partition)
