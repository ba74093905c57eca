"""Recovery never loops on one record: the loop on the in-memory broker (`processor.memory`)."""

from __future__ import annotations

import json
import logging
import re
import socket
from datetime import UTC, datetime

import pytest
from confluent_kafka import KafkaError

from pipeline.processor import Processor, ProcessorConfig, TopicNames
from pipeline.processor.caution import MAX_STRIKES, Caution
from pipeline.processor.config import default_instance_id
from pipeline.processor.memory import Fault, FaultKind, MemoryBroker, drain
from pipeline.processor.records import InboundRecord
from pipeline.processor.transactions import (
    AbortableFault,
    FatalFault,
    ProducerFenced,
    classify,
)
from topics import read_headers

TOPICS = TopicNames("c", "e", "a", "r", "dlq")
NOW = datetime(2024, 5, 1, tzinfo=UTC)
CONFIG = ProcessorConfig(kafka={}, topics=TOPICS, instance_id="t", batch_ms=1)


def create(i: int, name: str = "") -> bytes:
    document = {
        "command_id": f"c{i}",
        "type": "CreateUser",
        "aggregate_id": f"u{i}",
        "data": {"email": f"u{i}@example.com", "name": name or f"User {i}"},
        "issued_at": "2024-05-01T00:00:00Z",
    }
    return json.dumps(document).encode()


def started(values: list[bytes], *faults: Fault) -> tuple[Processor, MemoryBroker]:
    """A started processor on a fresh in-memory broker holding `values` on partition 0."""
    broker = MemoryBroker.for_config(CONFIG, 1)
    for value in values:
        broker.append("c", 0, b"k", value)
    broker.inject(*faults)
    processor = broker.processor(CONFIG, lambda: NOW)
    processor.start()
    return processor, broker


def run_until_drained(
    values: list[bytes], *faults: Fault, steps: int = 100
) -> tuple[Processor, MemoryBroker]:
    processor, broker = started(values, *faults)
    drain(processor, broker, steps)
    return processor, broker


def statuses(broker: MemoryBroker) -> list[str]:
    """The status header of every committed result, in order."""
    return [read_headers(list(r.headers))["status"] for r in broker.records("r")]


def poisoned(kind: FaultKind, message: str) -> Fault:
    return Fault(kind, times=None, implicates_record=True, message=message,
                 matches=lambda record: b"poison" in (record.value or b""))


@pytest.mark.parametrize("kind", ["abortable", "fatal"])
def test_a_record_the_producer_keeps_refusing_ends_as_a_pointer_dead_letter(
    kind: FaultKind,
) -> None:
    values = [create(i, "poison" if i == 2 else "") for i in range(5)]
    processor, broker = run_until_drained(values, poisoned(kind, "Broker: Message size too large"))
    counters = processor.counters
    assert (counters.accepted, counters.dead_lettered, counters.unwritable) == (4, 1, 1)
    assert len(broker.fired) == 1 + MAX_STRIKES  # the batch, then the record alone
    (pointer,) = broker.records("dlq")
    headers = read_headers(list(pointer.headers))
    assert pointer.value is None
    assert headers["dlq.source.offset"] == "2"
    assert headers["dlq.error.class"] == "UnwritableRecord"
    assert headers["dlq.original.value.bytes"] == str(len(values[2]))


def test_faults_that_do_not_implicate_a_record_dead_letter_nothing() -> None:
    outage = Fault("abortable", times=7, message="Local: Broker transport failure")
    processor, broker = run_until_drained([create(i) for i in range(5)], outage)
    assert (processor.counters.accepted, processor.counters.dead_lettered) == (5, 0)
    assert len(broker.fired) == 7
    assert not broker.records("dlq")


def test_a_record_whose_pointer_fails_too_is_skipped_and_the_loop_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refuse = Fault(
        "abortable", times=None, implicates_record=True, message="Broker: Invalid record",
        matches=lambda record: b"poison" in (record.value or b"") or record.topic == "dlq",
    )
    values = [create(i, "poison" if i == 1 else "") for i in range(3)]
    with caplog.at_level(logging.ERROR, logger="pipeline.processor.loop"):
        processor, broker = run_until_drained(values, refuse)
    counters = processor.counters
    assert (counters.accepted, counters.skipped) == (2, 1)
    assert len(broker.fired) == 1 + 2 * MAX_STRIKES
    # Skipped is its own outcome: no dead letter exists, so none is counted.
    assert not broker.records("dlq")
    assert (counters.dead_lettered, counters.unwritable) == (0, 0)  # no pointer committed
    assert counters.accepted + counters.skipped == len(values)
    (skipped,) = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert skipped.levelno == logging.ERROR
    assert (getattr(skipped, "partition", None), getattr(skipped, "offset", None)) == (0, 1)


def test_a_fenced_producer_is_not_recovered() -> None:
    processor, broker = started([create(0)], Fault("fenced"))
    with pytest.raises(ProducerFenced, match=r"transactional\.id 'cqrs\.processor-t'"):
        drain(processor, broker)
    assert not broker.records("r")


def test_a_second_producer_of_the_same_slot_fences_the_first() -> None:
    first, broker = started([create(0)])
    drain(first, broker)
    broker.append("c", 0, b"k", create(1))
    second = broker.processor(CONFIG, lambda: NOW)
    second.start()  # init_transactions of the same transactional id: a new epoch
    with pytest.raises(ProducerFenced):
        first.step()
    first.close()  # the fenced process exits (`Processor.run` closes it): it leaves the group
    drain(second, broker)
    assert statuses(broker) == ["accepted", "accepted"]


@pytest.mark.parametrize(
    "fault",
    [
        Fault("abortable", "commit"),
        Fault("abortable", "send_offsets"),
        Fault("fatal", "produce"),
        Fault("commit_lost", "commit"),
        Fault("commit_landed", "commit"),
    ],
    ids=["abort-at-commit", "abort-at-offsets", "fatal", "commit-lost", "commit-landed"],
)
def test_every_recovery_answers_each_command_once(fault: Fault) -> None:
    processor, broker = run_until_drained([create(i) for i in range(4)], fault)
    assert broker.fired == [fault]
    assert statuses(broker) == ["accepted"] * 4
    assert [r.key for r in broker.records("e")] == [f"user-u{i}@1".encode() for i in range(4)]
    counters = processor.counters
    # Counts are of commits the processor saw: one that landed unbeknownst is not counted.
    assert (counters.accepted, counters.duplicate) == (0 if fault.kind == "commit_landed" else 4, 0)
    restarted = fault.kind != "abortable"
    assert (counters.aborted_batches, counters.producer_restarts) == (
        int(not restarted), int(restarted)
    )


def test_after_a_recovery_the_failed_range_goes_one_record_per_transaction() -> None:
    processor, broker = run_until_drained(
        [create(i) for i in range(3)], Fault("abortable", "commit")
    )
    # The failed batch of 3, then each record of its range alone; then caution ends.
    assert processor.counters.batches == 3
    broker.append("c", 0, b"k", create(3))
    broker.append("c", 0, b"k", create(4))
    drain(processor, broker)
    assert processor.counters.batches == 4


def test_an_abort_that_fails_restarts_the_producer() -> None:
    faults = (Fault("abortable", "commit"), Fault("fatal", "abort"))
    processor, broker = run_until_drained([create(0), create(1)], *faults)
    assert (processor.counters.aborted_batches, processor.counters.producer_restarts) == (1, 1)
    assert statuses(broker) == ["accepted", "accepted"]


def test_a_landed_commit_is_not_redone_after_the_restart() -> None:
    processor, broker = started([create(0)], Fault("commit_landed", "commit"))
    drain(processor, broker)
    broker.append("c", 0, b"k", create(0))  # the same command again: the restore knows it
    drain(processor, broker)
    assert statuses(broker) == ["accepted", "duplicate"]


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


TRANSACTIONAL_ID_FRAGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def test_the_default_instance_id_is_this_hosts_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "processor-7f9c.pod")
    assert default_instance_id() == "processor-7f9c.pod"
    config = ProcessorConfig(kafka={}, topics=TOPICS, instance_id=default_instance_id())
    assert config.transactional_id == "cqrs.processor-processor-7f9c.pod"


HOSTS = ["a b/c", "a-b-c", "a/b c", "a--b--c", "-a-b-c-", "é", "è", " ", "..", "p" * 150,
         "p" * 150 + "q", "host_1", "HOST_1", "0"]


def test_distinct_host_names_give_distinct_valid_ids() -> None:
    ids = [default_instance_id(host) for host in HOSTS]
    assert len(set(ids)) == len(HOSTS)
    for host, instance_id in zip(HOSTS, ids, strict=True):
        assert TRANSACTIONAL_ID_FRAGMENT.match(instance_id), (host, instance_id)
        assert default_instance_id(host) == instance_id  # stable: a restart fences its own
    assert default_instance_id("processor-7f9c") == "processor-7f9c"
    assert default_instance_id("a b/c").startswith("a-b-c-")
    assert default_instance_id("") == "0"
