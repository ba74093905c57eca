"""The users replica on the real broker: it reads exactly the partitions it is told to follow,
each from where it should, and nothing while every partition is owned."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from pipeline.domain import users
from pipeline.processor import StreamState
from pipeline.processor.adapters import KafkaSnapshotTail
from pipeline.processor.replica import CustomerReplica
from tests.support.processor import (
    ProcessorProcess,
    command,
    owned,
    processor_config,
    produce,
    read_all,
    topics_for,
    wait_for,
)
from topics import Catalogue, decode_result, encode, partition_for

PARTITIONS = 3
NOW = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture
def catalogue(kafka_config: dict[str, str], topic_prefix: str) -> Iterator[Catalogue]:
    with topics_for(kafka_config, topic_prefix, PARTITIONS) as created:
        yield created


def user(user_id: str, version: int = 1, active: bool = True) -> StreamState:
    state = users.UserState(email=f"{user_id}@example.com", name=user_id, active=active)
    return StreamState(f"user-{user_id}", "user", version, state)


def write(
    kafka_config: dict[str, str], topic: str, records: list[tuple[int, bytes, bytes | None]]
) -> None:
    producer = Producer(kafka_config)
    for partition, key, value in records:
        producer.produce(topic, key=key, value=value, partition=partition)
    assert producer.flush(30) == 0


def snapshot(stream: StreamState) -> bytes:
    return encode(stream.to_snapshot(NOW))


def polled_until(replica: CustomerReplica, done: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the replica did not see it in time"
        replica.poll()
        time.sleep(0.1)


@pytest.mark.timeout(120)
def test_the_replica_follows_the_partitions_it_is_given_from_where_it_should(
    kafka_config: dict[str, str], catalogue: Catalogue, caplog: pytest.LogCaptureFixture
) -> None:
    topic = catalogue.aggregates.name
    write(kafka_config, topic, [
        (0, b"user-u0", snapshot(user("u0"))),
        (1, b"user-u1", b"not json"),  # owned: never read, never decoded
        (2, b"user-u2", snapshot(user("u2"))),
    ])
    config = processor_config(kafka_config, catalogue)
    replica = CustomerReplica(KafkaSnapshotTail(config.reader("replica"), topic))
    try:
        replica.follow(PARTITIONS, owned={1}, timeout_s=60)
        # Caught up at `follow`: no poll needed.
        assert (replica.status(0, "u0"), replica.status(2, "u2")) == ("active", "active")
        write(kafka_config, topic, [
            (0, b"user-u0", snapshot(user("u0", 2, active=False))),
            (1, b"user-u1", snapshot(user("u1"))),
        ])
        polled_until(replica, lambda: replica.status(0, "u0") == "deactivated")
        assert replica.status(1, "u1") is None
        # Partition 1 handed over: known at once, read on from offset 2 (its restore's end).
        replica.hand_over(1, [user("u1", 5)], resume_at=2)
        replica.follow(PARTITIONS, owned=(), timeout_s=60)
        assert replica.status(1, "u1") == "active"
        write(kafka_config, topic, [(1, b"user-u1", snapshot(user("u1", 6, active=False)))])
        polled_until(replica, lambda: replica.status(1, "u1") == "deactivated")
        # Every partition owned: nothing is read, every user forgotten.
        replica.follow(PARTITIONS, owned={0, 1, 2}, timeout_s=60)
        write(kafka_config, topic, [(0, b"user-u7", snapshot(user("u7")))])
        time.sleep(1)
        assert replica.poll() == 0
        assert replica.user_count() == 0
    finally:
        replica.close()
    assert "unreadable snapshot" not in caplog.text


def last_assignment(process: ProcessorProcess) -> list[int] | None:
    """What the process owns after its last rebalance (`None` before its first)."""
    found = owned(process.log())
    return None if found is None else sorted(found)


def answers(kafka_config: dict[str, str], catalogue: Catalogue) -> dict[str, tuple[str, Any]]:
    found = {}
    for record in read_all(kafka_config, catalogue.command_results.name):
        result = decode_result(record.value or b"")
        found[result.command_id] = (result.status, result.code)
    return found


@pytest.mark.timeout(300)
def test_two_processors_decide_orders_on_customers_of_either(
    kafka_config: dict[str, str], catalogue: Catalogue, tmp_path: Path
) -> None:
    customers = [f"u{i}" for i in range(12)]
    topic, results = catalogue.commands.name, catalogue.command_results.name
    items = [{"sku": "SKU-1", "quantity": 1, "unit_price": 100}]

    def orders(tag: str) -> list[dict[str, Any]]:
        return [command("CreateOrder", f"{tag}{n}", {"customer_id": customer, "items": items,
                                                     "currency": "EUR"}, f"{tag}{n}")
                for n, customer in enumerate(customers)]

    produce(kafka_config, topic, [command("CreateUser", c, {"email": f"{c}@example.com",
                                                             "name": c}) for c in customers],
            PARTITIONS)
    one = ProcessorProcess(kafka_config, catalogue, tmp_path / "one.log", "0")
    two = None
    try:
        wait_for(kafka_config, results, 12)
        two = ProcessorProcess(kafka_config, catalogue, tmp_path / "two.log", "1")
        deadline = time.monotonic() + 90
        while not (last_assignment(two) and last_assignment(one)
                   and len(last_assignment(one) or []) < PARTITIONS):
            assert time.monotonic() < deadline, "the group did not rebalance"
            time.sleep(0.5)
        produce(kafka_config, topic, orders("first-"), PARTITIONS)
        wait_for(kafka_config, results, 24, timeout=90)
        produce(kafka_config, topic, [command("DeactivateUser", c) for c in customers],
                PARTITIONS)
        wait_for(kafka_config, results, 36, timeout=90)
        time.sleep(5)  # the replicas are eventually consistent: a moment to read the news
        produce(kafka_config, topic, orders("second-"), PARTITIONS)
        wait_for(kafka_config, results, 48, timeout=90)
        owned_by_one = set(last_assignment(one) or [])  # a stop revokes them all
    finally:
        assert one.stop() == 0
        if two is not None:
            assert two.stop() == 0
    crossing = [n for n, customer in enumerate(customers)
                if (partition_for(f"order-first-{n}", PARTITIONS) in owned_by_one)
                != (partition_for(f"user-{customer}", PARTITIONS) in owned_by_one)]
    assert crossing, "no order was decided by another processor than its customer's"
    found = answers(kafka_config, catalogue)
    assert {found[f"first-{n}"] for n in range(12)} == {("accepted", None)}
    assert {found[f"second-{n}"] for n in range(12)} == {
        ("rejected", "order.customer_inactive")
    }
