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
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from pipeline.processor.batching import collect
from pipeline.processor.caution import Caution
from pipeline.processor.config import ProcessorConfig
from pipeline.processor.counters import Counters
from pipeline.processor.failures import UNWRITABLE, UnwritableRecord, pointer
from pipeline.processor.handling import Batch, Handled, handle
from pipeline.processor.records import InboundRecord
from pipeline.processor.replica import CustomerReplica
from pipeline.processor.restore import restore
from pipeline.processor.state import Overlay, StateStore
from pipeline.processor.topology import partition_count
from pipeline.processor.transactions import (
    AbortableFault,
    FatalFault,
    ProducerFactory,
    ProducerFault,
    ProducerFenced,
    ProducerPort,
    TransactionalProducer,
    fenced_message,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Processor:
    """One process of the aggregate processor; run several in one group to share partitions."""

    def __init__(
        self,
        config: ProcessorConfig,
        clock: Clock = utc_now,
        producer_factory: ProducerFactory = TransactionalProducer,
    ) -> None:
        self.config = config
        self.counters = Counters()
        self._clock = clock
        self._producer_factory = producer_factory
        self._store = StateStore()
        self._caution = Caution()
        self._partitions = 0
        self._consumer: Any = None
        self._producer: ProducerPort | None = None
        self._replica: CustomerReplica | None = None

    def run(self, stop: threading.Event) -> Counters:
        """Process until `stop` is set; the open batch is always committed or aborted first.

        Raises `ProducerFenced` when another process took this transactional id."""
        self._start()
        try:
            while not stop.is_set():
                self._step()
        except ProducerFenced as fenced:
            message = fenced_message(self.config.transactional_id)
            log.critical(message, extra={"error": str(fenced)})
            raise ProducerFenced(message) from fenced
        finally:
            self._close()
        return self.counters

    def _start(self) -> None:
        topics = self.config.topics
        self._partitions = partition_count(self.config.kafka, topics)
        # The producer first: init_transactions aborts what a killed predecessor of this slot
        # left open, so the restore below is not stuck behind it (read_committed, LSO).
        self._producer = self._producer_factory(self.config.producer())
        self._replica = CustomerReplica(
            self.config.reader("replica"), topics.aggregates, self._partitions
        )
        self._replica.catch_up(self.config.restore_timeout_s)
        self._consumer = Consumer(self.config.command_consumer())
        self._consumer.subscribe(
            [topics.commands],
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._revoked,
        )
        log.info("started", extra={"fields": {"partitions": self._partitions}})

    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        owned = [tp.partition for tp in partitions]
        self._restore(owned)
        log.info("assigned", extra={"partition": owned})

    def _revoked(self, consumer: Any, partitions: list[Any]) -> None:
        for tp in partitions:
            self._store.drop(tp.partition)
            self._caution.forget(tp.partition)
        log.info("revoked", extra={"partition": [tp.partition for tp in partitions]})

    def _restore(self, partitions: list[int]) -> None:
        if not partitions:
            return
        restored = restore(
            self.config.reader("restore"),
            self.config.topics.aggregates,
            partitions,
            self.config.restore_timeout_s,
            self.config.topics.events,
        )
        for partition, found in restored.items():
            self._store.load(partition, found.streams, found.quarantined)
            if self._replica is not None:
                # The replica skips owned partitions (see `CustomerReplica.poll`): it learns
                # their users here and from `_committed`.
                for stream in found.streams.values():
                    if stream.aggregate_type == "user":
                        self._replica.note(stream)

    def _step(self) -> None:
        assert self._replica is not None
        config = self.config
        messages = collect(self._consumer, config.batch_size, config.batch_ms, config.batch_idle_ms)
        self._replica.poll(owned=self._store.partitions)
        records = [
            _inbound(message)
            for message in messages
            if message.error() is None and self._store.owns(message.partition())
        ]
        for message in messages:
            if message.error() is not None:
                log.warning("consume error", extra={"error": str(message.error())})
        for chunk in self._caution.chunks(records):
            if not self._transact(chunk):
                break  # rewound: the records still in hand are consumed again

    def _transact(self, records: list[InboundRecord]) -> bool:
        """One transaction of `records`; False when it failed and the consumer was rewound."""
        overlay = Overlay(self._store)
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
        self._committed(overlay, counts, records)
        return True

    def _produce_batch(self, records: list[InboundRecord], overlay: Overlay) -> Counters:
        assert self._producer is not None
        assert self._replica is not None
        batch = Batch(
            self.config.topics, self._partitions, self._clock(), overlay, self._replica.status
        )
        counts = Counters(batches=1)
        events_topic = self.config.topics.events
        debug = log.isEnabledFor(logging.DEBUG)
        self._producer.begin()
        for record in records:
            handled = self._handle(record, batch, counts)
            for output in handled.outputs:
                self._producer.produce(output)
                if output.topic == events_topic:
                    counts.events += 1
            counts.count(handled.outcome)
            if not debug:
                continue
            log.debug(
                handled.outcome,
                extra={
                    "stream_id": handled.stream_id,
                    "command_id": handled.command_id,
                    "partition": record.partition,
                    "offset": record.offset,
                    "code": handled.code,
                },
            )
        offsets = _next_offsets(records)
        self._producer.send_offsets(offsets, self._consumer.consumer_group_metadata())
        self._producer.commit()
        return counts

    def _handle(self, record: InboundRecord, batch: Batch, counts: Counters) -> Handled:
        """`handle`, unless the record failed its own transactions too often (see `caution`)."""
        verdict = self._caution.verdict(record) if self._caution.active else "handle"
        if verdict == "handle":
            return handle(record, batch)
        fields = {"partition": record.partition, "offset": record.offset}
        if verdict == "pointer":
            log.error("record keeps failing its transaction: pointer dead letter", extra=fields)
            counts.unwritable += 1
            return pointer(record, batch.topics, UnwritableRecord(UNWRITABLE))
        log.error("record and its pointer dead letter keep failing: skipped", extra=fields)
        counts.skipped += 1
        return Handled("dead_lettered", [])

    def _committed(self, overlay: Overlay, counts: Counters, records: list[InboundRecord]) -> None:
        assert self._replica is not None
        for stream in overlay.commit_into():
            if stream.aggregate_type == "user":
                self._replica.note(stream)
        self.counters.add(counts)
        log.info(
            "batch committed",
            extra={
                "counts": counts.as_dict(),
                "partition": sorted({record.partition for record in records}),
                "fields": {"totals": self.counters.as_dict()},
            },
        )

    def _recover_abort(self, overlay: Overlay, fault: ProducerFault) -> None:
        assert self._producer is not None
        log.warning("aborting batch", extra={"error": str(fault)})
        overlay.drop()
        self.counters.aborted_batches += 1
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
        self._producer.reset()
        self._restore(sorted(self._store.partitions))
        self._rewind()

    def _rewind(self) -> None:
        """Seek every owned partition back to its committed offset (the last committed batch)."""
        assignment = self._consumer.assignment()
        if not assignment:
            return
        for tp in self._consumer.committed(assignment, timeout=30):
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            self._caution.resumed_at(tp.partition, tp.offset)
        log.info("rewound", extra={"partition": sorted(tp.partition for tp in assignment)})

    def _close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        if self._replica is not None:
            self._replica.close()
        log.info("stopped", extra={"counts": self.counters.as_dict()})


def _inbound(message: Any) -> InboundRecord:
    return InboundRecord(
        message.topic(),
        message.partition(),
        message.offset(),
        message.key(),
        message.value(),
        list(message.headers() or []),
    )


def _next_offsets(records: list[InboundRecord]) -> list[Any]:
    """The offset to resume from per partition: one past the last record of the batch."""
    last: dict[tuple[str, int], int] = {}
    for record in records:
        last[(record.topic, record.partition)] = record.offset
    return [
        TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()
    ]
