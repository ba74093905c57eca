"""A 3-node Kafka cluster from the native runner loses a node without losing an acknowledged write.

The cluster runs in its own temporary state directory and on free ports (never the services of
`cqrs services up`), and is stopped and removed even when a step fails. One module-scoped cluster
serves the steps in order: apply the catalogue with replication factor 3, a transactional round
trip, the real processor accepting commands, then a node SIGKILLed while an idempotent producer
writes with acks=all.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.support.cluster import Cluster, running_cluster, wait
from tests.support.processor import (
    command,
    processor_config,
    produce,
    running_in_thread,
    wait_for,
)
from topics import Catalogue, apply, describe, internal_drift


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as started:
        yield started


@pytest.fixture(scope="module")
def catalogue(cluster: Cluster) -> Catalogue:
    return Catalogue(prefix=f"test-{uuid.uuid4().hex[:10]}.", partitions=3, replication_factor=3)


def test_every_node_is_a_live_broker_and_status_covers_them(cluster: Cluster) -> None:
    metadata = cluster.admin().list_topics(timeout=10)
    assert sorted(metadata.brokers) == [1, 2, 3]
    statuses = cluster.runner(["kafka"]).status()
    assert [status.name for status in statuses] == ["kafka-1", "kafka-2", "kafka-3"]
    assert all(status.ready and status.pid for status in statuses)


def test_the_catalogue_is_applied_with_three_replicas(
    cluster: Cluster, catalogue: Catalogue
) -> None:
    admin = cluster.admin()
    report = apply(admin, catalogue)
    assert report.ok, report.drift
    assert set(report.created) == {spec.name for spec in catalogue.specs()}
    for state in describe(admin, catalogue):
        assert (state.replication_factor, state.max_replication_factor) == (3, 3), state
        assert state.configs["min.insync.replicas"] == "2"
    assert apply(admin, catalogue).created == ()
    single = Catalogue(prefix=catalogue.prefix, partitions=3, replication_factor=1)
    drift = {(found.topic, found.setting, found.actual) for found in apply(admin, single).drift}
    assert drift == {(spec.name, setting, actual) for spec in single.specs()
                     for setting, actual in (("replication factor", "3"),
                                             ("min.insync.replicas", "2"))}


def _delivered(into: list[tuple[bytes, int]], failures: list[str]
               ) -> Callable[[KafkaError | None, Message], None]:
    def on_delivery(error: KafkaError | None, message: Message) -> None:
        if error is None:
            into.append((message.value() or b"", message.partition() or 0))
        else:
            failures.append(str(error))
    return on_delivery


def _read_all(bootstrap: str, topic: str, partitions: int) -> list[bytes]:
    """Every committed record of `topic`, from the beginning to the end of each partition (the
    end-of-partition event counts transaction markers, which are never delivered)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex}",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        values: list[bytes] = []
        at_end: set[int] = set()
        deadline = time.monotonic() + 60
        while len(at_end) < partitions and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=1):
                error = message.error()
                if error is None:
                    values.append(message.value() or b"")
                else:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    at_end.add(message.partition() or 0)
        assert len(at_end) == partitions, "the topic was not read to its end within 60s"
        return values
    finally:
        consumer.close()


def test_a_transactional_round_trip_and_replicated_internal_topics(
    cluster: Cluster, catalogue: Catalogue
) -> None:
    topic = catalogue.commands.name
    producer = Producer({"bootstrap.servers": cluster.bootstrap,
                         "transactional.id": f"tx-{uuid.uuid4().hex}", "acks": "all"})
    producer.init_transactions(30)
    sent = [f"committed-{i}".encode() for i in range(20)]
    producer.begin_transaction()
    for i, value in enumerate(sent):
        producer.produce(topic, value, key=f"user-{i}".encode())
    producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, b"aborted", key=b"user-0")
    producer.abort_transaction(30)
    assert sorted(_read_all(cluster.bootstrap, topic, catalogue.partitions)) == sorted(sent)

    metadata = cluster.admin().list_topics(timeout=10)
    for internal in ("__transaction_state", "__consumer_offsets"):
        partitions = metadata.topics[internal].partitions.values()
        assert {len(partition.replicas) for partition in partitions} == {3}, internal
    assert internal_drift(catalogue, metadata) == []


def test_the_processor_accepts_commands_on_the_replicated_topics(
    cluster: Cluster, catalogue: Catalogue
) -> None:
    kafka = {"bootstrap.servers": cluster.bootstrap}
    commands = [command("CreateUser", f"u{i}", {"email": f"u{i}@example.com", "name": f"U {i}"})
                for i in range(30)]
    produce(kafka, catalogue.commands.name, commands, catalogue.partitions)
    with running_in_thread(processor_config(kafka, catalogue, "cluster")) as processor:
        wait("30 accepted commands", lambda: processor.counters.accepted == 30, 60)
    events = wait_for(kafka, catalogue.events.name, 30)
    assert sorted(event.key or b"" for event in events) == sorted(
        f"user-u{i}@1".encode() for i in range(30))


def _isr_sizes(admin: AdminClient, topic: str) -> dict[int, int]:
    partitions = admin.list_topics(topic=topic, timeout=5).topics[topic].partitions
    return {number: len(partition.isrs) for number, partition in partitions.items()}


class _Writer(threading.Thread):
    """Produces numbered records with acks=all until stopped, recording what was acknowledged."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.acknowledged: list[tuple[bytes, int]] = []
        self.failures: list[str] = []
        self.sent = 0
        self.stopping = threading.Event()
        config: dict[str, Any] = {"bootstrap.servers": bootstrap, "acks": "all",
                                  "enable.idempotence": True, "linger.ms": 5,
                                  "delivery.timeout.ms": 120000, "log_level": 0}
        self.producer = Producer(config)

    def run(self) -> None:
        on_delivery = _delivered(self.acknowledged, self.failures)
        while not self.stopping.is_set():
            for _ in range(20):
                self.producer.produce(self.topic, f"r-{self.sent}".encode(),
                                      key=f"user-{self.sent % 97}".encode(),
                                      on_delivery=on_delivery)
                self.sent += 1
            self.producer.poll(0.02)
        self.producer.flush(120)


def test_a_killed_node_loses_no_acknowledged_write(cluster: Cluster, catalogue: Catalogue) -> None:
    topic, admin = catalogue.events.name, cluster.admin()
    victim = 2
    writer = _Writer(cluster.bootstrap, topic)
    writer.start()
    try:
        wait("first acknowledgements", lambda: len(writer.acknowledged) > 500, 30)
        assert set(_isr_sizes(admin, topic).values()) == {3}
        cluster.signal(victim, signal.SIGKILL)
        killed_at, acked_at_kill = time.monotonic(), len(writer.acknowledged)
        shrink = wait("the ISR to shrink",
                       lambda: set(_isr_sizes(admin, topic).values()) == {2}, 60)
        wait("writes to go on with two nodes",
              lambda: len(writer.acknowledged) > acked_at_kill + 500, 60)
        acked_while_down = len(writer.acknowledged) - acked_at_kill
        restarting = time.monotonic()
        cluster.up(victim)
        rejoin = wait("the ISR to recover",
                       lambda: set(_isr_sizes(admin, topic).values()) == {3}, 90)
        cluster.log.append(
            f"ISR shrank {shrink:.1f}s after the SIGKILL; {acked_while_down} writes acknowledged "
            f"with the node down ({time.monotonic() - killed_at:.0f}s); node restarted and "
            f"ISR full again {time.monotonic() - restarting:.1f}s after `up` "
            f"({rejoin:.1f}s after it was ready)")
    finally:
        writer.stopping.set()
        writer.join(150)
    assert not writer.is_alive()
    assert writer.failures == []
    acknowledged = [value for value, _ in writer.acknowledged]
    assert len(acknowledged) == writer.sent
    found = _read_all(cluster.bootstrap, topic, catalogue.partitions)
    missing = set(acknowledged) - set(found)
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
    assert len(found) == len(set(found)), "a record was written twice"
