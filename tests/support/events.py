"""Test helpers: build event envelopes and produce them to an events topic (transactional too)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from projections.runtime.records import SourceRecord
from topics import (
    Event,
    EventEnvelope,
    OrderCreated,
    OrderItem,
    UserCreated,
    encode,
    event_key,
    headers_for_event,
    partition_for,
    to_envelope,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def envelope(stream_id: str, version: int, event: Event, at: datetime = T0) -> EventEnvelope:
    """`event` as the processor would write it at `version` of `stream_id`."""
    key = event_key(stream_id, version)
    return to_envelope(event, stream_id, version, key, at, None, None)


def stream(stream_id: str, events: Sequence[Event], at: datetime = T0) -> list[EventEnvelope]:
    """A whole stream, versions 1..n."""
    return [envelope(stream_id, n, event, at) for n, event in enumerate(events, start=1)]


def user_created(user_id: str, at: datetime = T0) -> EventEnvelope:
    return envelope(f"user-{user_id}", 1, UserCreated(email=f"{user_id}@example.com",
                                                      name=f"User {user_id}"), at)


def order_created(order_id: str, customer_id: str, total: int = 1000) -> OrderCreated:
    item = OrderItem(sku="sku-1", quantity=1, unit_price=total)
    return OrderCreated(customer_id=customer_id, items=(item,), currency="EUR", total=total)


def create_topics(kafka_config: dict[str, str], names: Iterable[str], partitions: int) -> None:
    admin = AdminClient(kafka_config)
    futures = admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    for future in futures.values():
        future.result(timeout=30)


def delete_topics(kafka_config: dict[str, str], prefix: str) -> None:
    admin = AdminClient(kafka_config)
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
    if names:
        for future in admin.delete_topics(names).values():
            future.result(timeout=30)


def produce(
    kafka_config: dict[str, str],
    topic: str,
    envelopes: Iterable[EventEnvelope],
    partitions: int,
    *,
    transactional: bool = False,
    abort: bool = False,
) -> int:
    """Write `envelopes` keyed `stream@version` to the partition of their stream (murmur2);
    in one transaction when `transactional`, aborted instead of committed when `abort`."""
    config = dict(kafka_config)
    if transactional:
        config["transactional.id"] = f"test-{uuid.uuid4().hex}"
    producer = Producer(config)
    if transactional:
        producer.init_transactions(30)
        producer.begin_transaction()
    count = 0
    for item in envelopes:
        producer.produce(topic, key=event_key(item.stream_id, item.version), value=encode(item),
                         partition=partition_for(item.stream_id, partitions),
                         headers=headers_for_event(item))
        count += 1
        if count % 10_000 == 0:
            producer.flush()
    if transactional:
        if abort:
            producer.flush()
            producer.abort_transaction(30)
        else:
            producer.commit_transaction(30)
    assert producer.flush(30) == 0
    return count


def produce_raw(kafka_config: dict[str, str], topic: str, key: bytes, value: bytes,
                partition: int, headers: list[tuple[str, bytes]] | None = None) -> None:
    """One arbitrary record (for poison tests)."""
    producer = Producer(kafka_config)
    producer.produce(topic, key=key, value=value, partition=partition, headers=headers or [])
    assert producer.flush(30) == 0


def as_records(envelopes: Iterable[EventEnvelope], topic: str = "t.events",
               partitions: int = 3, start: int = 0) -> list[SourceRecord]:
    """Envelopes as the records a consumer would read (offsets from `start`, per partition)."""
    next_offset: dict[int, int] = {}
    records = []
    for item in envelopes:
        partition = partition_for(item.stream_id, partitions)
        offset = next_offset.get(partition, start)
        next_offset[partition] = offset + 1
        records.append(SourceRecord(topic, partition, offset,
                                    event_key(item.stream_id, item.version).encode(),
                                    encode(item), tuple(headers_for_event(item))))
    return records
