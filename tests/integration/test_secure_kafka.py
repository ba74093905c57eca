"""Kafka on the secure services: SASL_SSL (SCRAM-SHA-512) only, and each principal held to its ACLs.

After `grant_kafka` (what `cqrs access apply` runs for a prefix, as the admin) and `topics.apply`
as the admin, the real processor, with the processor's credentials, answers a command the client
principal sent, and the client reads the result; a projector's credentials read the events
through aiokafka (Faust's client) in the projector's group. The projector may not produce a
command, the client may not read the events, the managers may not produce events nor read the
command results, a wrong password, a plaintext client and a TLS client without SASL get nothing:
the broker's own error (TOPIC_AUTHORIZATION_FAILED, SASL authentication failed, the connection
closed during the handshake) is asserted, beside the same call succeeding over SASL_SSL. A role's
password is rotated by editing its secret file and running `up` again on the running node.
"""

from __future__ import annotations

import asyncio
import logging
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
from cqrs.services import Runner
from cqrs.services.credentials import write_secret_file
from pipeline.client import CommandClient, NotAuthorized, new_command
from pipeline.client.kafka import result_group
from projections.runtime.app import _credentials, projector_app
from tests.support.processor import running_in_thread
from tests.support.secure import SecureStack
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
def granted(secure_stack: SecureStack) -> Granted:
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


class Lines(logging.Handler):
    """librdkafka's log lines, through a client's `logger`."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def refused_at_handshake(granted: Granted, **protocol: str) -> list[str]:
    """A metadata request to the broker listener with `protocol` settings, which must fail;
    librdkafka's log lines meanwhile. The same request over SASL_SSL (the client's settings,
    the same address) succeeds first: a refusal is not the service being down."""
    secure = granted.config("client").kafka
    assert secure.bootstrap == granted.stack.layout.kafka_bootstrap
    assert AdminClient(secure.client_config()).list_topics(timeout=10).brokers
    lines = Lines()
    logger = logging.getLogger(f"test-secure-kafka-{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    config: dict[str, Any] = {"bootstrap.servers": secure.bootstrap, "logger": logger,
                              **protocol}
    admin = AdminClient(config)
    with pytest.raises(KafkaException) as caught:
        admin.list_topics(timeout=5)
    admin.poll(0)
    assert caught.value.args[0].code() == KafkaError._TRANSPORT
    return lines.lines


def test_a_plaintext_client_gets_nothing(granted: Granted) -> None:
    lines = refused_at_handshake(granted, **{"security.protocol": "PLAINTEXT"})
    # Connected, then dropped by the broker at the client's first request (not refused, not
    # timed out): the TLS listener closes on a plaintext request.
    closed = [line for line in lines if "connection closed by peer" in line]
    assert closed, lines
    assert all("in state APIVERSION_QUERY" in line for line in closed), closed
    assert not any("Connection refused" in line for line in lines), lines


def test_tls_without_sasl_gets_nothing(granted: Granted) -> None:
    log = granted.stack.layout.log_file("kafka")
    before = log.stat().st_size
    lines = refused_at_handshake(granted, **{
        "security.protocol": "SSL", "ssl.ca.location": str(granted.stack.layout.ca_file)})
    # The TLS handshake succeeds (state UP), then the broker closes: no SASL authentication.
    assert any("SSL connection closed by peer" in line and "in state UP" in line
               for line in lines), lines
    deadline = time.monotonic() + 10
    expected = "Unexpected Kafka request of type METADATA during SASL handshake"
    while expected not in log.read_bytes()[before:].decode(errors="replace"):
        assert time.monotonic() < deadline, f"no {expected!r} in {log}"
        time.sleep(0.2)


def test_the_managers_may_not_produce_events_nor_read_the_command_results(
        granted: Granted) -> None:
    errors: list[KafkaError | None] = []
    producer = Producer(granted.client_config("managers"))
    producer.produce(granted.catalogue.events.name, b"{}", b"user-x",
                     on_delivery=lambda error, _message: errors.append(error))
    producer.flush(30)
    assert [error and error.code() for error in errors] == [
        KafkaError.TOPIC_AUTHORIZATION_FAILED]
    results = granted.catalogue.command_results.name
    consumer = Consumer(granted.client_config("managers",
                                              **{"group.id": f"{granted.prefix}managers"}))
    try:
        # What the managers may read, they see; the command results, they are refused.
        events = granted.catalogue.events.name
        assert consumer.list_topics(events, timeout=10).topics[events].error is None
        error = consumer.list_topics(results, timeout=10).topics[results].error
    finally:
        consumer.close()
    assert error is not None
    assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error


def test_a_role_password_is_rotated_by_its_secret_file_and_up(granted: Granted) -> None:
    """Editing `secrets/kafka-<role>` and running `up` on the running node: the role connects
    with the new password (its file holds it) and is refused with the old one."""
    stack = granted.stack
    old = granted.config("managers").kafka
    assert old.sasl_password
    new_password = f"rotated-{uuid.uuid4().hex}"
    write_secret_file(stack.roles.directory / "secrets" / "kafka-managers", new_password + "\n")
    said: list[str] = []
    Runner(stack.layout, ["kafka"]).up(said.append)
    assert not any(new_password in line or old.sasl_password in line for line in said), said
    new = granted.config("managers").kafka
    assert new.sasl_password == new_password
    assert AdminClient(new.client_config()).list_topics(timeout=10).brokers
    errors: list[KafkaError] = []
    config: dict[str, Any] = {**old.client_config(), "error_cb": errors.append}
    admin = AdminClient(config)
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=10)
    admin.poll(0)
    assert any(error.code() == KafkaError._AUTHENTICATION for error in errors), errors
    assert any("Authentication failed" in error.str() for error in errors), errors
