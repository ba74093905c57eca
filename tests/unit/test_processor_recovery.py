"""Recovery never loops on one record: the loop against a fake consumer and producer (no Kafka)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition

from pipeline.processor import Processor, ProcessorConfig, StreamState, TopicNames
from pipeline.processor.caution import MAX_STRIKES, Caution
from pipeline.processor.config import default_instance_id
from pipeline.processor.records import InboundRecord, OutboundRecord
from pipeline.processor.transactions import (
    AbortableFault,
    FatalFault,
    ProducerFenced,
    classify,
)
from topics.envelopes import read_headers

TOPICS = TopicNames("c", "e", "a", "r", "dlq")
NOW = datetime(2024, 5, 1, tzinfo=UTC)


class Message:
    def __init__(self, offset: int, value: bytes) -> None:
        self._offset, self._value = offset, value

    def topic(self) -> str:
        return "c"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return []

    def error(self) -> None:
        return None


class FakeConsumer:
    """One partition of commands; committed offsets move only with a committed transaction."""

    def __init__(self, values: list[bytes]) -> None:
        self.log = [Message(offset, value) for offset, value in enumerate(values)]
        self.position = 0
        self.committed_offset = 0

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        taken = self.log[self.position : self.position + num_messages]
        self.position += len(taken)
        return taken

    def poll(self, timeout: float) -> Message | None:
        taken = self.consume(1, timeout)
        return taken[0] if taken else None

    def consumer_group_metadata(self) -> str:
        return "group"

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("c", 0)]

    def committed(self, assignment: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition("c", 0, self.committed_offset)]

    def seek(self, tp: TopicPartition) -> None:
        self.position = max(tp.offset, 0)


class FakeProducer:
    """Transactions over a list; `fault(record)` may refuse a record at produce."""

    def __init__(
        self, consumer: FakeConsumer, fault: Callable[[OutboundRecord], Exception | None]
    ) -> None:
        self.consumer, self.fault = consumer, fault
        self.pending: list[OutboundRecord] = []
        self.written: list[OutboundRecord] = []
        self.offset: int | None = None
        self.failures = 0

    def begin(self) -> None:
        self.pending, self.offset = [], None

    def produce(self, record: OutboundRecord) -> None:
        error = self.fault(record)
        if error is not None:
            self.failures += 1
            raise error
        self.pending.append(record)

    def send_offsets(self, offsets: list[TopicPartition], group_metadata: Any) -> None:
        self.offset = offsets[0].offset

    def commit(self) -> None:
        self.written.extend(self.pending)
        assert self.offset is not None
        self.consumer.committed_offset = self.offset

    def abort(self) -> None:
        self.pending = []

    def reset(self) -> None:
        self.pending = []


class FakeReplica:
    def poll(self, owned: object = ()) -> int:
        return 0

    def status(self, user_id: str) -> None:
        return None

    def note(self, stream: StreamState) -> None:
        pass


def create(i: int, name: str = "") -> bytes:
    document = {
        "command_id": f"c{i}",
        "type": "CreateUser",
        "aggregate_id": f"u{i}",
        "data": {"email": f"u{i}@example.com", "name": name or f"User {i}"},
        "issued_at": "2024-05-01T00:00:00Z",
    }
    return json.dumps(document).encode()


def run_until_drained(
    values: list[bytes], fault: Callable[[OutboundRecord], Exception | None], steps: int = 100
) -> tuple[Processor, FakeProducer]:
    consumer = FakeConsumer(values)
    producer = FakeProducer(consumer, fault)
    config = ProcessorConfig(kafka={}, topics=TOPICS, instance_id="t", batch_ms=1)
    processor = Processor(config, lambda: NOW, producer_factory=lambda conf: producer)
    processor._consumer, processor._producer = consumer, producer
    processor._replica = FakeReplica()  # type: ignore[assignment]
    processor._partitions = 1
    processor._store.load(0, {})
    processor._restore = lambda partitions: None  # type: ignore[method-assign]
    for _ in range(steps):
        if consumer.committed_offset == len(values):
            return processor, producer
        processor._step()
    raise AssertionError(f"not drained in {steps} steps: {processor.counters}")


def poisoned(error: Exception) -> Callable[[OutboundRecord], Exception | None]:
    return lambda record: error if b"poison" in (record.value or b"") else None


@pytest.mark.parametrize("kind", [AbortableFault, FatalFault])
def test_a_record_the_producer_keeps_refusing_ends_as_a_pointer_dead_letter(
    kind: type[AbortableFault] | type[FatalFault],
) -> None:
    values = [create(i, "poison" if i == 2 else "") for i in range(5)]
    fault = kind("Broker: Message size too large", implicates_record=True)
    processor, producer = run_until_drained(values, poisoned(fault))
    counters = processor.counters
    assert (counters.accepted, counters.dead_lettered, counters.unwritable) == (4, 1, 1)
    assert producer.failures == 1 + MAX_STRIKES  # the batch, then the record alone
    (pointer,) = [record for record in producer.written if record.topic == "dlq"]
    headers = read_headers(list(pointer.headers))
    assert pointer.value is None
    assert headers["dlq.source.offset"] == "2"
    assert headers["dlq.error.class"] == "UnwritableRecord"
    assert headers["dlq.original.value.bytes"] == str(len(values[2]))


def test_faults_that_do_not_implicate_a_record_dead_letter_nothing() -> None:
    remaining = [7]

    def outage(record: OutboundRecord) -> Exception | None:
        if remaining[0] > 0:
            remaining[0] -= 1
            return AbortableFault("Local: Broker transport failure")
        return None

    values = [create(i) for i in range(5)]
    processor, producer = run_until_drained(values, outage)
    assert (processor.counters.accepted, processor.counters.dead_lettered) == (5, 0)
    assert producer.failures == 7
    assert not [record for record in producer.written if record.topic == "dlq"]


def test_a_record_whose_pointer_fails_too_is_skipped_and_the_loop_ends() -> None:
    def refuse(record: OutboundRecord) -> Exception | None:
        hit = b"poison" in (record.value or b"") or record.topic == "dlq"
        return AbortableFault("Broker: Invalid record", implicates_record=True) if hit else None

    values = [create(i, "poison" if i == 1 else "") for i in range(3)]
    processor, producer = run_until_drained(values, refuse)
    assert (processor.counters.accepted, processor.counters.skipped) == (2, 1)
    assert producer.failures == 1 + 2 * MAX_STRIKES


def test_a_fenced_producer_is_not_recovered() -> None:
    values = [create(0)]
    fenced = ProducerFenced("Local: This instance has been fenced by a newer instance")
    with pytest.raises(ProducerFenced):
        run_until_drained(values, lambda record: fenced)


def test_classify_names_fencing_and_record_faults() -> None:
    fenced = classify(KafkaError(KafkaError._FENCED, "fenced", fatal=True))
    assert isinstance(fenced, ProducerFenced)
    too_large = classify(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "big", txn_requires_abort=True))
    assert isinstance(too_large, AbortableFault)
    assert too_large.implicates_record
    transport = classify(KafkaError(KafkaError._TRANSPORT, "down", txn_requires_abort=True))
    assert isinstance(transport, AbortableFault)
    assert not transport.implicates_record
    timed_out = classify(KafkaError(KafkaError._TIMED_OUT, "slow"), commit=True)
    assert isinstance(timed_out, FatalFault)
    assert not timed_out.implicates_record


def test_caution_ranges_end_once_passed_or_committed_past() -> None:
    caution = Caution()
    records = [InboundRecord("c", 0, offset, None, b"") for offset in range(3)]
    caution.failed(records, AbortableFault("x"))
    assert [len(chunk) for chunk in caution.chunks(records)] == [1, 1, 1]
    caution.committed(records[:2])
    assert caution.active
    caution.resumed_at(0, 3)  # the failed commit had in fact succeeded
    assert not caution.active
    later = [*records, InboundRecord("c", 0, 3, None, b"")]
    assert [len(chunk) for chunk in caution.chunks(later)] == [4]


def test_the_default_instance_id_comes_from_the_host_name() -> None:
    assert default_instance_id("processor-7f9c") == "processor-7f9c"
    assert default_instance_id("a b/c") == "a-b-c"
    assert default_instance_id("") == "0"
    assert default_instance_id() == default_instance_id()
