"""The hand-written projector: the Faust postgres projector's store work, with no Faust.

A plain confluent-kafka consumer (`read_committed`, no auto-commit, seeking to the store's
checkpoints on assignment) hands what it has fetched (up to 500 records) to the same
`BatchProcessor` over the same `PostgresStore` as `cqrs project postgres`: the shared
classification (`classify`: envelope decoding, upcasting, poison), the parked streams, the batch
fold with its `SELECT … FOR UPDATE`, the guarded upserts and the checkpoint in one transaction
per batch, dead letters to a DLQ topic. Only the runtime differs, so "Faust projector /
hand-written" measures the runtime alone.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from bench.measure import Measurement, Sample, from_log
from bench.workload import BATCH, QUIET
from pipeline.processor import heap
from projections.postgres.store import PostgresStore
from projections.runtime.errors import TransientError
from projections.runtime.processor import BatchProcessor
from projections.runtime.records import SourceRecord
from topics import deadletter

NAME = "handwritten"
"""The projector name in the store's checkpoint rows (its own database)."""


class KafkaDeadLetters:
    """`DeadLetters` through a confluent-kafka producer (acks=all), the shared bounded copy
    (`topics.deadletter.dead_letter`); `send` returns once the broker has the letter."""

    def __init__(self, kafka: dict[str, Any], topic: str) -> None:
        self._topic = topic
        self._producer = Producer({**kafka, "acks": "all", "enable.idempotence": True,
                                   "log_level": QUIET})
        self.sent = 0

    async def send(self, record: SourceRecord, error: BaseException) -> None:
        letter = deadletter.dead_letter(topic=record.topic, partition=record.partition,
                                        offset=record.offset, key=record.key,
                                        value=record.value, headers=record.headers, error=error)
        headers: list[tuple[str, str | bytes | None]] = list(letter.headers)
        self._producer.produce(self._topic, letter.value, letter.key, headers=headers)
        if self._producer.flush(30):
            raise TransientError(f"dead letter to {self._topic} not delivered in 30 s")
        self.sent += 1


def source_record(message: Message) -> SourceRecord:
    """A confluent-kafka message as the runtime's `SourceRecord` (headers as `(name, bytes)`)."""
    raw = message.headers() or ()
    pairs = raw.items() if isinstance(raw, dict) else raw  # a consumed message has a list
    headers = tuple((name, value.encode() if isinstance(value, str) else value or b"")
                    for name, value in pairs)
    return SourceRecord(message.topic() or "", message.partition() or 0, message.offset() or 0,
                        message.key(), message.value(), headers)


def _fetched(consumer: Consumer) -> list[Message]:
    """What is fetched already, up to 500 records, as the Faust runtime hands a fetch to its
    agent (`BatchOptions`: no window); when nothing is, the next record as soon as it comes.
    librdkafka fetches in its own threads meanwhile, as aiokafka does for Faust."""
    messages: list[Message] = consumer.consume(num_messages=BATCH, timeout=0)
    return messages or consumer.consume(num_messages=1, timeout=1.0)


def handwritten_projector(kafka: dict[str, Any], topic: str, dlq: str, group: str, dsn: str,
                          partitions: int, count: int,
                          tick: Callable[[int], None]) -> dict[str, Any]:
    """Project `topic` into the (empty) database `dsn` until `count` records are accounted for.

    Timed as the Faust projector is timed from its log: from the end of the first batch to the
    commit of the batch holding the `count`th record, the first batch's records excluded (so
    the store's start, migrations included, and the group join are not measured). The
    collector is set as `cqrs project` sets it (`heap.tune`, `heap.settle`) while it runs, so the
    two differ in their runtime alone."""
    threshold = gc.get_threshold()
    heap.tune(heap.YOUNG_THRESHOLD)
    heap.settle()
    try:
        return asyncio.run(_project(kafka, topic, dlq, group, dsn, partitions, count, tick))
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


async def _project(kafka: dict[str, Any], topic: str, dlq: str, group: str, dsn: str,
                   partitions: int, count: int, tick: Callable[[int], None]) -> dict[str, Any]:
    store = PostgresStore(dsn, projector=NAME)
    letters = KafkaDeadLetters(kafka, dlq)
    processor = BatchProcessor(NAME, store, letters, partitions=partitions)
    checkpoints = await processor.checkpoints(topic)  # starts the store (migrations)

    def seek_to_checkpoints(consumer: Consumer, assigned: list[TopicPartition]) -> None:
        for where in assigned:
            if where.partition in checkpoints:
                where.offset = checkpoints[where.partition] + 1
        consumer.assign(assigned)

    consumer = Consumer({**kafka, "group.id": group, "enable.auto.commit": False,
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                         "log_level": QUIET})
    consumer.subscribe([topic], on_assign=seek_to_checkpoints)
    points: list[Sample] = []
    try:
        while processor.counters.consumed < count:
            messages = [m for m in _fetched(consumer) if m.error() is None]
            if messages:
                await processor.process([source_record(m) for m in messages])
                points.append((time.time(), processor.counters.consumed))
                consumer.commit(asynchronous=True)  # group offsets, for lag tools only
                tick(processor.counters.consumed)
    finally:
        consumer.close()
        await store.close()
    measured: Measurement = from_log(points, count)
    return {**measured.as_dict(), "counters": processor.counters.snapshot(),
            "dead_letters_sent": letters.sent}
