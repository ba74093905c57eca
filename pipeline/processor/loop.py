"""The transaction loop: consume a batch, decide, produce, commit offsets and output atomically.

Per batch (up to `batch_size` commands or `batch_ms`): one Kafka transaction holds every event,
snapshot, result, DLQ record and forwarded command of the batch, plus the consumed offsets
(`send_offsets_to_transaction` with the group metadata, so a fenced zombie cannot commit).
States change in an overlay applied only after the commit; on an abort the overlay is dropped
and the consumer rewinds to the committed offsets, so the batch is decided again from scratch.

No process exits because of a record's content: `handle` turns whatever one record raises into
its dead letter, only producer/transaction faults take the recovery path, and after a recovery
the rewound range goes one record per transaction until a record that keeps failing alone is
dead-lettered as a pointer (`caution`). A fenced producer (`ProducerFenced`) stops the process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import TypeVar

from prometheus_client import CollectorRegistry

from pipeline.processor import heap
from pipeline.processor.batching import collect
from pipeline.processor.caution import Caution
from pipeline.processor.config import ProcessorConfig
from pipeline.processor.counters import ProcessorCounts
from pipeline.processor.failures import UNWRITABLE, UnwritableRecord, pointer
from pipeline.processor.faults import (
    AbortableFault,
    FatalFault,
    ProducerFault,
    ProducerFenced,
    fenced_message,
)
from pipeline.processor.handling import BatchContext, Handled, handle
from pipeline.processor.health import ProcessorHealth
from pipeline.processor.metrics import ProcessorMetrics
from pipeline.processor.ports import ProcessorPorts, ProducerPort, TopicPosition
from pipeline.processor.records import InboundRecord
from pipeline.processor.restore import restore
from pipeline.processor.spill import BoundedStateStore
from pipeline.processor.state import Overlay, StateStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_T = TypeVar("_T")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Processor:
    """One process of the aggregate processor; run several in one group to share partitions."""

    def __init__(
        self,
        config: ProcessorConfig,
        ports: ProcessorPorts,
        clock: Clock = utc_now,
        metrics: ProcessorMetrics | None = None,
    ) -> None:
        """`ports` come from one composition root: `bootstrap.kafka_ports` (Kafka) or
        `memory.MemoryBroker.ports` (in memory, with faults on demand). `metrics` default to a
        registry of this processor's own; `health` is what `/livez` and `/readyz` answer."""
        self.config = config
        self.counters = ProcessorCounts()
        self.metrics = metrics or ProcessorMetrics(CollectorRegistry(), config.prefix)
        self.health = ProcessorHealth(restore_limit_s=config.max_poll_interval_ms / 1000)
        self._clock = clock
        self._ports = ports
        self._consumer = ports.commands
        self._replica = ports.replica
        self._store = (StateStore() if config.max_resident_streams is None
                       else BoundedStateStore(config.max_resident_streams, config.spill_dir,
                                              owner=config.transactional_id))
        self._restored_up_to: dict[int, int] = {}
        """Per owned partition: the aggregates offset its last restore read up to."""
        self._caution = Caution()
        self._revoked_in_collect: set[int] = set()
        """Partitions revoked since the current batch began to be collected."""
        self._partitions = 0
        self._producer: ProducerPort | None = None

    def run(self, stop: threading.Event) -> ProcessorCounts:
        """Process until `stop` is set; the open batch is always committed or aborted first.

        Raises `ProducerFenced` when another process took this transactional id."""
        self.start()
        try:
            while not stop.is_set():
                self.step()
        finally:
            self.close()
        return self.counters

    def start(self) -> None:
        """Start the producer and subscribe (partitions, their states and the replica of the
        others come with `step`)."""
        self._partitions = self._ports.partition_count()
        # The producer first: init_transactions aborts what a killed predecessor of this slot
        # left open, so a restore is not stuck behind it (read_committed, LSO).
        self._producer = self._fenced_stops(self._ports.producer_factory, self.config.producer())
        self._consumer.subscribe(self._assigned, self._revoked)
        log.info("started", extra={"fields": {
            "partitions": self._partitions,
            "max_resident_streams": self.config.max_resident_streams}})

    def step(self) -> None:
        """One batch: collect, then transactions until done or one failed (rewound).

        Raises `ProducerFenced` (naming the transactional id) when the producer was fenced."""
        self._fenced_stops(self._step)

    def _fenced_stops(self, operation: Callable[..., _T], *args: object) -> _T:
        try:
            return operation(*args)
        except ProducerFenced as fenced:
            message = fenced_message(self.config.transactional_id)
            log.critical(message, extra={"error": str(fenced)})
            raise ProducerFenced(message) from fenced

    def _assigned(self, partitions: list[int]) -> None:
        """`partitions` were added (a cooperative rebalance names only what moved here; the
        partitions kept are neither revoked nor restored)."""
        self.metrics.assigned()
        self.health.assigned(sorted(self._store.partitions | set(partitions)))
        self._await_stable_offsets(partitions)
        self._restore(partitions)
        with self.health.restoring():
            self._follow()
        log.info("assigned", extra={"partitions": partitions,
                                    "fields": {"owned": sorted(self._store.partitions)}})

    def _revoked(self, partitions: list[int]) -> None:
        """`partitions` were taken away (or lost); the others stay owned and keep going."""
        self._revoked_in_collect.update(partitions)
        for partition in partitions:
            self._replica.hand_over(
                partition, self._store.drop(partition), self._restored_up_to.pop(partition, 0)
            )
            self._caution.forget(partition)
        self._follow()
        self.metrics.revoked(partitions)
        self.health.revoked(sorted(self._store.partitions))
        log.info("revoked", extra={"partitions": partitions,
                                   "fields": {"owned": sorted(self._store.partitions)}})

    def _await_stable_offsets(self, partitions: list[int]) -> None:
        """Wait until no transaction holds offsets of the newly assigned `partitions`, so the
        restore after it reads whatever a previous owner committed last.

        A previous owner that stalled after `send_offsets` (accepted with its generation) and
        before its commit may still commit when it wakes: the broker checks no generation at
        EndTxn. Its records may not have reached the partitions yet (they leave the client
        asynchronously), so a restore before that commit would decide on stale state. Stable
        offsets say that transaction ended, not that its commit marker reached the aggregates
        partition's leader: the restore reads to the high watermark, so it waits for the marker
        too (`reading`). Raises past `stable_offsets_timeout_s` (nothing decided; the process
        exits, as at a restore timeout)."""
        if not partitions:
            return
        started = time.monotonic()
        with self.health.restoring():
            self._consumer.committed(partitions, self.config.stable_offsets_timeout_s)
        waited = time.monotonic() - started
        self.metrics.offsets_stable(waited)
        log.info("offsets stable", extra={"partitions": partitions,
                                          "fields": {"waited_s": round(waited, 3)}})

    def _restore(self, partitions: list[int]) -> None:
        """Load the states of `partitions`, then freeze them out of the collector's scans."""
        if not partitions:
            return
        started = time.monotonic()
        with self.health.restoring(), heap.paused():
            restored = restore(
                self._ports.reader,
                self.config.topics.aggregates,
                partitions,
                self.config.restore_timeout_s,
                self.config.topics.events,
                staging=self._store.staging,
            )
        streams = sum(len(found.streams) for found in restored.values())
        self.metrics.restored(time.monotonic() - started, streams)
        for partition, found in restored.items():
            self._store.load(partition, found.streams, found.quarantined)
            self._restored_up_to[partition] = found.read_up_to
        heap.settle()

    def _follow(self) -> None:
        """The replica reads the partitions not owned now (see `replica`)."""
        self._replica.follow(
            self._partitions, self._store.partitions, self.config.restore_timeout_s
        )

    def _step(self) -> None:
        self.health.iterated()
        self._sample_lag()
        config = self.config
        self._revoked_in_collect = set()
        consumed = collect(self._consumer, config.batch_size, config.batch_ms, config.batch_idle_ms)
        self._replica.poll()
        records = [record for record in consumed if self._store.owns(record.partition)]
        back = self._revoked_in_collect & self._store.partitions
        if back:
            # Revoked and assigned again while the batch was collected: the records read before
            # the revocation are read again from the committed offset after the assignment, so
            # the batch holds some twice. They all go, and the partitions are read again.
            records = [record for record in records if record.partition not in back]
            self._rewind(back)
        for chunk in self._caution.chunks(records):
            if not self._transact(chunk):
                break  # rewound: the records still in hand are consumed again

    def _transact(self, records: list[InboundRecord]) -> bool:
        """One transaction of `records`; False when it failed and the consumer was rewound."""
        overlay = Overlay(self._store)
        started = time.monotonic()
        try:
            counts = self._produce_batch(records, overlay)
        except AbortableFault as fault:
            self._caution.failed(records, fault)
            self._recover_abort(overlay, fault)
            return False
        except FatalFault as fault:
            self._caution.failed(records, fault)
            self._recover_fatal(overlay, fault)
            return False
        self._caution.committed(records)
        self.metrics.committed(counts, len(records), time.monotonic() - started)
        self._committed(overlay, counts, records)
        return True

    def _produce_batch(self, records: list[InboundRecord], overlay: Overlay) -> ProcessorCounts:
        assert self._producer is not None
        context = BatchContext(
            self.config.topics, self._partitions, self._clock(), overlay, self._replica.status
        )
        counts = ProcessorCounts(batches=1)
        events_topic = self.config.topics.events
        debug = log.isEnabledFor(logging.DEBUG)
        self._producer.begin()
        produce = self._producer.produce
        for record in records:
            handled = self._handle(record, context, counts)
            for output in handled.outputs:
                produce(output)
                if output.topic == events_topic:
                    counts.events += 1
            counts.count(handled.outcome)
            if debug:
                log.debug(handled.outcome, extra=handled.log_fields(record, events_topic))
        offsets = _next_offsets(records)
        self._producer.send_offsets(offsets, self._consumer.group_metadata())
        self._producer.commit()
        return counts

    def _handle(
        self, record: InboundRecord, context: BatchContext, counts: ProcessorCounts
    ) -> Handled:
        """`handle`, unless the record failed its own transactions too often (see `caution`)."""
        verdict = self._caution.verdict(record) if self._caution.active else "handle"
        if verdict == "handle":
            return handle(record, context)
        fields = {"partition": record.partition, "offset": record.offset}
        if verdict == "pointer":
            log.error("record keeps failing its transaction: pointer dead letter", extra=fields)
            counts.unwritable += 1
            return pointer(record, context.topics, UnwritableRecord(UNWRITABLE))
        # Nothing is written for it: its offset is committed alone, and the original stays at
        # its source position (named in the log, since no dead letter names it).
        log.error(
            "record and its pointer dead letter keep failing: skipped, no dead letter",
            extra={**fields, "fields": {"topic": record.topic}},
        )
        return Handled("skipped", [])

    def _sample_lag(self) -> None:
        """The lag gauges; a consumer that cannot tell its position now (`lag` calls
        `position()`, which raises on a broker or state error) costs a warning, never the loop."""
        self.metrics.sample_streams(self._store.counts)
        try:
            self.metrics.sample_lag(self._consumer.lag)
        except Exception as error:
            log.warning("consumer lag not sampled",
                        extra={"error": f"{type(error).__name__}: {error}"})

    def _committed(
        self, overlay: Overlay, counts: ProcessorCounts, records: list[InboundRecord]
    ) -> None:
        overlay.commit_into()
        self.counters.add(counts)
        log.info(
            "batch committed",
            extra={
                "counts": counts.as_dict(),
                "partitions": sorted({record.partition for record in records}),
                "fields": {"totals": self.counters.as_dict()},
            },
        )

    def _recover_abort(self, overlay: Overlay, fault: ProducerFault) -> None:
        assert self._producer is not None
        log.warning("aborting batch", extra={"error": str(fault)})
        overlay.drop()
        self.counters.aborted_batches += 1
        self.metrics.aborted()
        try:
            self._producer.abort()
        except ProducerFault as second:
            self._recover_fatal(overlay, second)
            return
        self._rewind()

    def _recover_fatal(self, overlay: Overlay, fault: ProducerFault) -> None:
        """Unknown outcome: the old batch may have committed, so states are restored again."""
        assert self._producer is not None
        log.error("restarting producer", extra={"error": str(fault)})
        overlay.drop()
        self.counters.producer_restarts += 1
        self.metrics.producer_restarted()
        with self.health.recovering():
            self._producer.reset()
            self._restore(sorted(self._store.partitions))
            self._rewind()

    def _rewind(self, partitions: Collection[int] | None = None) -> None:
        """Seek every owned partition (or those of `partitions`) back to its committed offset
        (the last committed batch)."""
        assignment = self._consumer.assignment()
        if partitions is not None:
            assignment = [partition for partition in assignment if partition in partitions]
        if not assignment:
            return
        for partition, offset in self._consumer.committed(assignment).items():
            self._consumer.seek(partition, offset)
            self._caution.resumed_at(partition, -1 if offset is None else offset)
        log.info("rewound", extra={"partitions": sorted(assignment)})

    def close(self) -> None:
        """Leave the group and close the readers (the producer goes with the process)."""
        self.health.stopped()
        try:
            self._consumer.close()
            self._replica.close()
        finally:
            self._store.close()
        log.info("stopped", extra={"counts": self.counters.as_dict()})


def _next_offsets(records: list[InboundRecord]) -> list[TopicPosition]:
    """The offset to resume from per partition: one past the last record of the batch."""
    last: dict[tuple[str, int], int] = {}
    for record in records:
        last[(record.topic, record.partition)] = record.offset
    return [
        TopicPosition(topic, partition, offset + 1) for (topic, partition), offset in last.items()
    ]
