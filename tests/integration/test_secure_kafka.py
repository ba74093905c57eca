"""Kafka on the secure services: SASL_SSL (SCRAM-SHA-512) only, and each principal held to its ACLs.

After `grant_kafka` (what `cqrs access apply` runs for a prefix, as the admin) and `topics.apply`
as the admin, the real processor, with the processor's credentials, answers a command the client
principal sent, and the client reads the result; a projector's credentials read the events
through aiokafka (Faust's client) in the projector's group. The projector may not produce a
command, the client may not read the events, a wrong password and a plaintext client get nothing:
the broker's own error (TOPIC_AUTHORIZATION_FAILED, SASL authentication failed) is asserted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from cqrs.access.kafka import grant_kafka
from cqrs.config import Config
from pipeline.client import CommandClient, NotAuthorized, new_command
from pipeline.client.kafka import result_group
from projections.runtime.app import _credentials, projector_app
from tests.support.processor import running_in_thread
from tests.support.secure import SecureStack, secure_stack  # noqa: F401
from topics import Catalogue, apply, decode_event

PARTITIONS = 2


@dataclass(frozen=True)
class Granted:
    stack: SecureStack
    prefix: str
    catalogue: Catalogue

    def config(self, role: Any) -> Config:
        return Config.from_settings(self.stack.settings(role, topic_prefix=self.prefix,
                                                        partitions=PARTITIONS))

    def client_config(self, role: Any, **extra: Any) -> dict[str, Any]:
        return {**self.config(role).kafka.client_config(), **extra}


@pytest.fixture(scope="module")
def granted(secure_stack: SecureStack) -> Granted:  # noqa: F811
    prefix = f"sec-{uuid.uuid4().hex[:10]}."
    said: list[str] = []
    admin_settings = secure_stack.settings("admin", topic_prefix=prefix, partitions=PARTITIONS)
    grant_kafka(admin_settings, secure_stack.roles, said.append)
    grant_kafka(admin_settings, secure_stack.roles, said.append)  # idempotent
    config = Config.from_settings(admin_settings)
    apply(AdminClient(config.kafka.client_config()), config.catalogue)
    assert any("ACLs" in line for line in said)
    return Granted(secure_stack, prefix, config.catalogue)


@pytest.fixture(scope="module")
def accepted(granted: Granted) -> str:
    """A command the client principal sent, which the processor principal accepted."""
    processor = granted.config("processor").processor("0", batch_size=100, batch_ms=20)
    command = new_command("CreateUser", "user-sec1",
                          {"email": "sec1@example.com", "name": "Secure One"})
    with running_in_thread(processor), CommandClient(
            granted.client_config("client"), granted.catalogue) as client:
        result = client.send_and_wait(command, timeout=60)
    assert result.status == "accepted", result
    return command.command_id


@pytest.mark.timeout(180)
def test_the_processor_answers_the_clients_command(accepted: str) -> None:
    assert accepted


@pytest.mark.timeout(120)
def test_a_projector_reads_the_events_through_aiokafka_in_its_group(
        granted: Granted, accepted: str) -> None:
    kafka = granted.config("projector-postgres").kafka

    async def read() -> list[str]:
        consumer = AIOKafkaConsumer(
            granted.catalogue.events.name, bootstrap_servers=kafka.bootstrap,
            group_id=projector_app(granted.prefix, "postgres"), auto_offset_reset="earliest",
            enable_auto_commit=False, **credentials_to_aiokafka_auth(_credentials(kafka)))
        await consumer.start()
        try:
            fetched = await consumer.getmany(timeout_ms=30_000)
            await consumer.commit()
        finally:
            await consumer.stop()
        return [decode_event(record.value).causation_id
                for records in fetched.values() for record in records]

    assert accepted in asyncio.run(read())


def test_the_projector_may_not_produce_a_command(granted: Granted) -> None:
    errors: list[KafkaError] = []
    producer = Producer(granted.client_config("projector-search"))
    producer.produce(granted.catalogue.commands.name, b"{}", b"user-x",
                     on_delivery=lambda error, _message: errors.append(error))
    producer.flush(30)
    assert [error.code() for error in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    with pytest.raises(NotAuthorized, match="TOPIC_AUTHORIZATION_FAILED") as refused:
        CommandClient(granted.client_config("projector-search"), granted.catalogue)
    assert granted.catalogue.commands.name in str(refused.value)


def test_the_client_may_not_read_the_events(granted: Granted, accepted: str) -> None:
    # A group the client may look up (its result readers'): what is refused is the topic.
    events = granted.catalogue.events.name
    consumer = Consumer(granted.client_config(
        "client", **{"group.id": result_group(granted.prefix), "auto.offset.reset": "earliest"}))
    try:
        # Assigned, the partitions of a topic the broker refuses are never fetched.
        consumer.assign([TopicPartition(events, p, 0) for p in range(PARTITIONS)])
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            assert message is None or message.error() is not None, "read an event"
        error = consumer.list_topics(events, timeout=10).topics[events].error
    finally:
        consumer.close()
    assert error is not None
    assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    assert "Topic authorization failed" in error.str()


def test_a_wrong_password_is_refused(granted: Granted) -> None:
    errors: list[KafkaError] = []
    config = granted.config("client").kafka
    wrong = replace(config, sasl_password="not-" + (config.sasl_password or ""))
    admin = AdminClient({**wrong.client_config(), "error_cb": errors.append})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=10)
    admin.poll(0)
    assert any(error.code() == KafkaError._AUTHENTICATION for error in errors), errors
    assert any("Authentication failed" in error.str() for error in errors), errors


def test_a_plaintext_client_gets_nothing(granted: Granted) -> None:
    admin = AdminClient({"bootstrap.servers": granted.stack.layout.kafka_bootstrap,
                         "security.protocol": "PLAINTEXT", "log_level": 0})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
