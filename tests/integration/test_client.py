"""`CommandClient` against the real broker: partition, key, value and headers; waiting on results.

The aggregate processor is not needed: a small responder thread reads the commands topic and
answers on the results topic the way the processor does (same partition, key = stream id), which
tests the client's waiting logic against a real broker.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from pipeline.client import CommandClient, ResultTimeout, TopicMissing, new_command
from topics import (
    Catalogue,
    CommandResult,
    apply,
    correlation_of,
    decode_command,
    encode,
    partition_for,
    read_headers,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def catalogue(kafka_config: dict[str, str], topic_prefix: str) -> Iterator[Catalogue]:
    admin = AdminClient(dict[str, Any](kafka_config))
    created = Catalogue(prefix=topic_prefix, partitions=6)
    report = apply(admin, created)
    assert not report.drift
    yield created
    futures = admin.delete_topics([spec.name for spec in created.specs()])
    for future in futures.values():
        future.result()


@pytest.fixture
def client(kafka_config: dict[str, str], catalogue: Catalogue) -> Iterator[CommandClient]:
    with CommandClient(kafka_config, catalogue) as opened:
        yield opened


def _consumer(kafka_config: dict[str, str]) -> Consumer:
    return Consumer({**kafka_config, "group.id": f"test-{uuid.uuid4().hex}",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})


def test_missing_topics_fail_clearly(kafka_config: dict[str, str], topic_prefix: str) -> None:
    with pytest.raises(TopicMissing, match="cqrs topics apply"):
        CommandClient(kafka_config, Catalogue(prefix=topic_prefix))


def test_send_writes_key_value_headers_on_the_murmur2_partition(
    client: CommandClient, catalogue: Catalogue, kafka_config: dict[str, str]
) -> None:
    commands = [new_command("CreateUser", f"u{n:03}", {"email": f"u{n}@example.com", "name": "U"})
                for n in range(20)]
    assert client.send(commands[0]) == commands[0].command_id
    assert client.send_many(commands[1:]) == [c.command_id for c in commands[1:]]
    consumer = _consumer(kafka_config)
    consumer.subscribe([catalogue.commands.name])
    seen: dict[str, Any] = {}
    try:
        while len(seen) < len(commands):
            message = consumer.poll(10)
            assert message is not None, f"only {len(seen)} of {len(commands)} commands read back"
            assert message.error() is None
            seen[decode_command(message.value() or b"").command_id] = message
    finally:
        consumer.close()
    assert client.partitions == 6
    for command in commands:
        message = seen[command.command_id]
        stream_id = f"user-{command.aggregate_id}"
        assert message.key() == stream_id.encode()
        assert message.partition() == partition_for(stream_id, 6)
        assert message.value() == encode(command)
        assert read_headers(message.headers()) == {
            "type": "CreateUser", "stream_id": stream_id, "command_id": command.command_id,
            "correlation_id": correlation_of(command)}


class Responder(threading.Thread):
    """Answers every command (accepted, version 1) the way the processor does; or stays silent."""

    def __init__(self, kafka_config: dict[str, str], catalogue: Catalogue) -> None:
        super().__init__(daemon=True)
        self.kafka_config = kafka_config
        self.catalogue = catalogue
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        consumer = _consumer(self.kafka_config)
        consumer.assign([TopicPartition(self.catalogue.commands.name, p, 0) for p in range(6)])
        producer = Producer(self.kafka_config)
        # Results already on the topic before the client asks must be ignored: write one that
        # names a command id the client will never send.
        producer.produce(self.catalogue.command_results.name, partition=0, value=encode(
            self._result("stale", "user-x", 0)))
        producer.flush(10)
        self.ready.set()
        try:
            while not self.stop.is_set():
                message = consumer.poll(0.2)
                if message is None or message.error() is not None:
                    continue
                command = decode_command(message.value() or b"")
                key, partition = message.key() or b"", message.partition() or 0
                stream_id = key.decode()
                # Noise first: an undecodable record and another command's result.
                for value in (b"not json", encode(self._result("other", stream_id, 9))):
                    producer.produce(self.catalogue.command_results.name, key=key,
                                     value=value, partition=partition)
                producer.produce(self.catalogue.command_results.name, key=key,
                                 value=encode(self._result(command.command_id, stream_id, 1)),
                                 partition=partition)
                producer.flush(10)
        finally:
            consumer.close()

    @staticmethod
    def _result(command_id: str, stream_id: str, version: int) -> CommandResult:
        return CommandResult(command_id=command_id, stream_id=stream_id, status="accepted",
                             version=version, event_ids=[f"{stream_id}@{version}"],
                             processed_at=datetime.now(UTC))


@pytest.fixture
def responder(kafka_config: dict[str, str], catalogue: Catalogue) -> Iterator[Responder]:
    thread = Responder(kafka_config, catalogue)
    thread.start()
    assert thread.ready.wait(30)
    yield thread
    thread.stop.set()
    thread.join(10)


def test_send_and_wait_returns_the_commands_result(
    client: CommandClient, responder: Responder, kafka_config: dict[str, str],
    catalogue: Catalogue,
) -> None:
    command = new_command("CreateUser", "u001", {"email": "a@example.com", "name": "A"})
    # A result for this very command id, written before it was sent, must not be taken.
    old = Producer(kafka_config)
    old.produce(catalogue.command_results.name, partition=client.partition_of(command),
                value=encode(Responder._result(command.command_id, "user-u001", 7)))
    old.flush(10)
    result = client.send_and_wait(command, timeout=30)
    assert (result.command_id, result.status, result.version) == (command.command_id,
                                                                  "accepted", 1)
    assert result.stream_id == "user-u001"
    again = new_command("DeactivateUser", "u001")
    assert client.send_and_wait(again, timeout=30).command_id == again.command_id


def test_send_many_and_wait_returns_results_in_order(
    client: CommandClient, responder: Responder
) -> None:
    commands = [new_command("ShipOrder", f"o{n}") for n in range(10)]
    results = client.send_many_and_wait(commands, timeout=30)
    assert [r.command_id for r in results] == [c.command_id for c in commands]


def test_send_and_wait_times_out_when_nobody_answers(client: CommandClient) -> None:
    command = new_command("CreateUser", "u001", {"email": "a@example.com", "name": "A"})
    with pytest.raises(ResultTimeout, match="cqrs processor") as info:
        client.send_and_wait(command, timeout=1.5)
    assert info.value.pending == [command.command_id]
    assert info.value.results == {}
