"""Hostile records against the real broker: none of them stops the processor or loops it."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer

from pipeline.processor.bootstrap import kafka_processor
from pipeline.processor.transactions import ProducerFenced
from tests.support.processor import (
    command,
    processor_config,
    produce,
    read_all,
    running_in_thread,
    topics_for,
    wait_for,
)
from topics import Catalogue, CommandResult, deadletter, decode_result, partition_for

PARTITIONS = 3
BATCH_OVERHEAD = 80
"""A one-record batch's framing with an 8-byte key, no headers, no compression: 61 bytes of
batch header, 19 of record fields (length, attributes, deltas, key and value lengths)."""


@pytest.fixture
def catalogue(kafka_config: dict[str, str], topic_prefix: str) -> Iterator[Catalogue]:
    with topics_for(kafka_config, topic_prefix, PARTITIONS) as created:
        yield created


def user(i: int) -> dict[str, str]:
    return {"email": f"u{i}@example.com", "name": f"User {i}"}


def results(kafka_config: dict[str, str], catalogue: Catalogue) -> dict[str, CommandResult]:
    found = {}
    for record in read_all(kafka_config, catalogue.command_results.name):
        result = decode_result(record.value or b"")
        found[result.command_id] = result
    return found


def answered(
    kafka_config: dict[str, str], catalogue: Catalogue, command_ids: set[str], timeout: float = 90
) -> dict[str, CommandResult]:
    deadline = time.monotonic() + timeout
    while True:
        found = results(kafka_config, catalogue)
        if command_ids <= set(found):
            return found
        assert time.monotonic() < deadline, f"unanswered: {command_ids - set(found)}"
        time.sleep(1)


def produce_raw(kafka_config: dict[str, str], topic: str, key: bytes, value: bytes) -> Any:
    """One record through a plain producer that allows 2 MB; the delivery error or None."""
    producer = Producer(
        {**kafka_config, "message.max.bytes": 2_000_000, "compression.type": "none",
         "enable.idempotence": False, "linger.ms": 0}
    )
    errors: list[Any] = []
    producer.produce(topic, value, key, partition=0, on_delivery=lambda e, m: errors.append(e))
    assert producer.flush(60) == 0
    return errors[0]


@pytest.mark.timeout(240)
def test_commands_of_the_topic_limit_become_bounded_dead_letters(
    kafka_config: dict[str, str], catalogue: Catalogue
) -> None:
    limit = int(catalogue.commands.configs["max.message.bytes"])
    exact = b"x" * (limit - BATCH_OVERHEAD)
    over = produce_raw(kafka_config, catalogue.commands.name, b"user-big", exact + b"x")
    assert over is not None
    assert over.code() == KafkaError.MSG_SIZE_TOO_LARGE  # so `exact` is the largest there is
    assert produce_raw(kafka_config, catalogue.commands.name, b"user-big", exact) is None
    large = b"y" * 1_040_000
    assert produce_raw(kafka_config, catalogue.commands.name, b"user-big", large) is None
    long_id = command("CreateUser", "a" * 122, user(1), "long-id-1")  # event id of 129 chars
    produce(kafka_config, catalogue.commands.name, [long_id], PARTITIONS)
    config = processor_config(kafka_config, catalogue, "hostile", batch_ms=50)
    with running_in_thread(config) as processor:
        fresh = command("CreateUser", "u1", user(1), "fresh-1")
        produce(kafka_config, catalogue.commands.name, [fresh], PARTITIONS)
        found = answered(kafka_config, catalogue, {"fresh-1", "long-id-1"})
        later = command("CreateUser", "u2", user(2), "fresh-2")
        produce(kafka_config, catalogue.commands.name, [later], PARTITIONS)
        found = answered(kafka_config, catalogue, {"fresh-2"})
        assert processor.counters.producer_restarts == 0
        assert processor.counters.aborted_batches == 0
    assert (found["fresh-1"].status, found["fresh-2"].status) == ("accepted", "accepted")
    assert found["long-id-1"].status == "rejected"
    dlq = read_all(kafka_config, catalogue.commands_dlq.name)
    by_offset = {int(record.headers["dlq.source.offset"]): record for record in dlq
                 if record.headers["dlq.source.partition"] == "0"}
    for original in (exact, large):
        digest = hashlib.sha256(original).hexdigest()
        (record,) = [r for r in by_offset.values()
                     if r.headers["dlq.original.value.sha256"] == digest]
        assert record.headers["dlq.original.value.bytes"] == str(len(original))
        assert record.headers["dlq.error.class"] == "TooLarge"
        assert record.headers["dlq.truncated"] == "value"
        assert record.value == original[:deadletter.MAX_DEAD_LETTER_VALUE]
    assert len(dlq) == 3  # the two large ones and the long id, once each


def put_snapshot(
    kafka_config: dict[str, str], catalogue: Catalogue, stream_id: str, value: bytes
) -> None:
    producer = Producer(kafka_config)
    partition = partition_for(stream_id, PARTITIONS)
    producer.produce(catalogue.aggregates.name, value, stream_id.encode(), partition=partition)
    assert producer.flush(30) == 0


def latest_snapshot(
    kafka_config: dict[str, str], catalogue: Catalogue, stream_id: str
) -> dict[str, Any]:
    found = [r for r in read_all(kafka_config, catalogue.aggregates.name)
             if r.key == stream_id.encode()]
    document: dict[str, Any] = json.loads(found[-1].value or b"")
    return document


@pytest.mark.timeout(240)
def test_unreadable_snapshots_are_rebuilt_from_events_or_quarantined(
    kafka_config: dict[str, str], catalogue: Catalogue, caplog: pytest.LogCaptureFixture
) -> None:
    creates = [command("CreateUser", f"u{i}", user(i), f"create-{i}") for i in (1, 2)]
    produce(kafka_config, catalogue.commands.name, creates, PARTITIONS)
    with running_in_thread(processor_config(kafka_config, catalogue, "snap")):
        wait_for(kafka_config, catalogue.command_results.name, 2)
    upgraded = latest_snapshot(kafka_config, catalogue, "user-u1")
    upgraded["state"]["nickname"] = "from a newer release"  # UserState forbids extra fields
    put_snapshot(kafka_config, catalogue, "user-u1", json.dumps(upgraded).encode())
    put_snapshot(kafka_config, catalogue, "user-u2", b"\x00 not json")
    put_snapshot(kafka_config, catalogue, "user-u9", b"{broken")  # no events to rebuild from
    caplog.set_level(logging.WARNING)
    followups = [
        command("UpdateUser", "u1", {"name": "Renamed 1"}, "update-1", expected_version=1),
        command("UpdateUser", "u2", {"name": "Renamed 2"}, "update-2", expected_version=1),
        command("CreateUser", "u1", user(1), "create-1"),  # a duplicate, known from the events
        command("CreateUser", "u9", user(9), "create-9"),
        command("CreateUser", "u3", user(3), "create-3"),
    ]
    with running_in_thread(processor_config(kafka_config, catalogue, "snap")) as processor:
        produce(kafka_config, catalogue.commands.name, followups, PARTITIONS)
        found = answered(kafka_config, catalogue, {c["command_id"] for c in followups})
        assert processor.counters.dead_lettered == 1
    assert (found["update-1"].status, found["update-1"].version) == ("accepted", 2)
    assert (found["update-2"].status, found["update-2"].version) == ("accepted", 2)
    assert found["create-1"].status == "duplicate"
    assert (found["create-9"].status, found["create-9"].code) == (
        "rejected", "processor.stream_quarantined")
    assert found["create-3"].status == "accepted"
    messages = [(r.getMessage(), getattr(r, "stream_id", None)) for r in caplog.records]
    rebuilt = {s for m, s in messages if m.startswith("stream rebuilt")}
    quarantined = {s for m, s in messages if m.startswith("stream quarantined")}
    assert rebuilt >= {"user-u1", "user-u2"}
    assert quarantined == {"user-u9"}
    # The one processor owns every partition: its users replica reads none of them (their
    # snapshots are the restore's), so it never meets the unreadable ones.
    assert not any(m.startswith("replica ignores") for m, _ in messages)
    (dead,) = read_all(kafka_config, catalogue.commands_dlq.name)
    assert dead.headers["dlq.error.class"] == "StreamQuarantined"


@pytest.mark.timeout(240)
def test_a_fenced_processor_stops_and_its_successor_answers_everything(
    kafka_config: dict[str, str], catalogue: Catalogue
) -> None:
    stop = threading.Event()
    outcome: list[BaseException | None] = []
    first = kafka_processor(processor_config(kafka_config, catalogue, "same"))

    def run_first() -> None:
        try:
            first.run(stop)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run_first, daemon=True)
    thread.start()
    try:
        produce(kafka_config, catalogue.commands.name,
                [command("CreateUser", "u0", user(0), "before")], PARTITIONS)
        time.sleep(3)
        assert not outcome, outcome
        answered(kafka_config, catalogue, {"before"})
        with running_in_thread(processor_config(kafka_config, catalogue, "same")):
            documents = [command("CreateUser", f"u{i}", user(i), f"c-{i}") for i in range(1, 60)]
            for document in documents:  # keeps coming while the group rebalances
                produce(kafka_config, catalogue.commands.name, [document], PARTITIONS)
                time.sleep(0.1)
            thread.join(90)
            found = answered(kafka_config, catalogue, {d["command_id"] for d in documents})
    finally:
        stop.set()
        thread.join(60)
    assert len(outcome) == 1
    assert isinstance(outcome[0], ProducerFenced)
    assert "distinct --instance-id" in str(outcome[0])
    assert {result.status for result in found.values()} == {"accepted"}
