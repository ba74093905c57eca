"""Inbound and outbound Kafka records as plain data, and the builders of every outbound kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pipeline.processor.config import TopicNames
from pipeline.processor.state import StreamState
from topics.envelopes import (
    CommandResult,
    EventEnvelope,
    Headers,
    encode,
    event_key,
    headers_for_event,
)
from topics.errors import DecodeError


@dataclass(frozen=True)
class InboundRecord:
    """A consumed command record (what the processor needs of a confluent-kafka `Message`)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


@dataclass(frozen=True)
class OutboundRecord:
    """A record to produce inside the batch's transaction, to an explicit partition."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


def forward(record: InboundRecord, partition: int) -> OutboundRecord:
    """The command unchanged, on the partition its stream belongs to."""
    headers = [(name, value or b"") for name, value in record.headers]
    return OutboundRecord(record.topic, partition, record.key, record.value, headers)


def dead_letter(
    record: InboundRecord, topics: TopicNames, error: DecodeError | Exception
) -> OutboundRecord:
    """The raw command on the DLQ, with headers naming where it came from and why it failed."""
    headers = [
        ("source_topic", record.topic.encode()),
        ("source_partition", str(record.partition).encode()),
        ("source_offset", str(record.offset).encode()),
        ("error_class", type(error).__name__.encode()),
        ("error_message", str(error)[:1000].encode("utf-8", errors="replace")),
    ]
    return OutboundRecord(topics.commands_dlq, record.partition, record.key, record.value, headers)


def result(record: InboundRecord, topics: TopicNames, answer: CommandResult) -> OutboundRecord:
    """The answer on the command's own partition, so a waiting client assigns just that one.

    Keyed by stream id when known, else by the command's own key (what the client hashed)."""
    key = answer.stream_id.encode() if answer.stream_id else record.key
    headers = [("command_id", answer.command_id.encode()), ("status", answer.status.encode())]
    return OutboundRecord(topics.command_results, record.partition, key, encode(answer), headers)


def event(envelope: EventEnvelope, topics: TopicNames, partition: int) -> OutboundRecord:
    key = event_key(envelope.stream_id, envelope.version).encode()
    return OutboundRecord(
        topics.events, partition, key, encode(envelope), headers_for_event(envelope)
    )


def snapshot(
    stream: StreamState, topics: TopicNames, partition: int, now: datetime
) -> OutboundRecord:
    value = encode(stream.to_snapshot(now))
    return OutboundRecord(topics.aggregates, partition, stream.stream_id.encode(), value, [])
