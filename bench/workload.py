"""The benchmark's messages: CreateUser commands and the UserCreated events they lead to.

Every stage uses these, so message sizes are the same throughout: one user per command or event,
ids `<tag><n>`, emails `<tag><n>@example.com`, names `User <n>`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

from pipeline.client.commands import new_command
from topics import (
    EventEnvelope,
    UserCreated,
    encode,
    event_key,
    headers_for_command,
    headers_for_event,
    partition_for,
    to_envelope,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
QUIET = 4
"""librdkafka log level for the bench's own clients: warnings and worse, no info lines
(such as "Purging 1 unserved events") over the progress display."""
BATCH = 500
"""Records per consume, rows per transaction, documents per bulk: the same in every stage."""


Headers = list[tuple[str, str | bytes | None]]


def command_record(tag: str, number: int) -> tuple[str, bytes, Headers]:
    """(stream id, value, headers) of a CreateUser command, as `cqrs send` would write it."""
    aggregate_id = f"{tag}{number}"
    command = new_command("CreateUser", aggregate_id,
                          {"email": f"{aggregate_id}@example.com", "name": f"User {number}"})
    stream_id = f"user-{aggregate_id}"
    return stream_id, encode(command), list(headers_for_command(command, stream_id))


def command_size() -> int:
    """Bytes of one encoded CreateUser envelope (the K stage's message size)."""
    return len(command_record("k", 0)[1])


def user_event(tag: str, number: int) -> EventEnvelope:
    stream_id = f"user-{tag}{number}"
    event = UserCreated(email=f"{tag}{number}@example.com", name=f"User {number}")
    return to_envelope(event, stream_id, 1, event_key(stream_id, 1), T0, None, None)


def producer(kafka: dict[str, Any]) -> Producer:
    return Producer({**kafka, "enable.idempotence": True, "linger.ms": 5,
                     "partitioner": "murmur2_random", "log_level": QUIET})


def send(out: Producer, topic: str, key: str, value: bytes, partition: int,
         headers: Headers | None = None) -> None:
    while True:
        try:
            out.produce(topic, value, key.encode(), partition=partition, headers=headers)
            out.poll(0)
            return
        except BufferError:
            out.poll(0.05)


def produce_commands(kafka: dict[str, Any], topic: str, partitions: int, tag: str, count: int,
                     tick: Callable[[int], None] | None = None) -> None:
    """`count` CreateUser commands on their stream's murmur2 partition."""
    out = producer(kafka)
    for number in range(count):
        stream_id, value, headers = command_record(tag, number)
        send(out, topic, stream_id, value, partition_for(stream_id, partitions), headers)
        if tick is not None and number % 1000 == 0:
            tick(number)
    _flush(out)


def produce_events(kafka: dict[str, Any], topic: str, partitions: int,
                   events: Iterable[EventEnvelope]) -> int:
    """Events keyed `stream@version` on their stream's partition, as the processor writes them."""
    out = producer(kafka)
    count = 0
    for envelope in events:
        send(out, topic, event_key(envelope.stream_id, envelope.version), encode(envelope),
             partition_for(envelope.stream_id, partitions), list(headers_for_event(envelope)))
        count += 1
    _flush(out)
    return count


def _flush(out: Producer) -> None:
    remaining = out.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} records not delivered")


class Pacer:
    """Spaces calls `1 / rate` seconds apart (absolute schedule, so no drift)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = time.monotonic()

    def wait(self) -> None:
        self._next += self._interval
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
