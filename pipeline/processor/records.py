"""Inbound and outbound Kafka records as plain data, and the builders of every outbound kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pipeline.domain import aggregates
from pipeline.processor.config import TopicNames
from pipeline.processor.state import StreamState
from topics import (
    CommandResult,
    Event,
    EventEnvelope,
    Headers,
    deadletter,
    encode,
    encode_event_fields,
    encode_result_fields,
    encode_snapshot_fields,
    event_id_for,
    event_key,
    headers_for_event,
    limits,
    to_envelope,
)


@dataclass(frozen=True)
class InboundRecord:
    """A consumed command record (what the processor needs of a confluent-kafka `Message`)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    unreadable_headers: str | None = None
    """Why the record's headers could not be read (`headers` is then empty): the record is
    dead-lettered as `UnreadableHeaders` (see `adapters.inbound`)."""


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
    record: InboundRecord, topics: TopicNames, error: BaseException, *, pointer: bool = False
) -> OutboundRecord:
    """The command on the DLQ as `topics.deadletter` bounds it: a prefix copy, its size and
    sha256, and headers naming the source position and the error. `pointer`: no copy at all
    (no value, no copied headers, `dlq.truncated` naming them), for a record that the producer
    keeps refusing: the original stays at its source position."""
    letter = deadletter.dead_letter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=record.headers,
        error=error,
        pointer=pointer,
    )
    return OutboundRecord(
        topics.commands_dlq, record.partition, letter.key, letter.value, letter.headers
    )


MAX_OUTPUT_BYTES = deadletter.RECORD_LIMIT - 1024
"""Largest `size_of` an output may have: the producers' and topics' record limit less a margin
for the record batch's own framing (61 bytes) and the record's length fields."""
_HEADER_FRAMING = deadletter.HEADER_FRAMING


def size_of(output: OutboundRecord) -> int:
    """The bytes `output` takes in a record: key, value and headers with their framing."""
    headers = sum(deadletter.header_size(name, value) for name, value in output.headers)
    return len(output.key or b"") + len(output.value or b"") + headers


def size_bound(output: OutboundRecord) -> int:
    """At least `size_of(output)`, counted without encoding the header names: a character takes
    at most 4 bytes of UTF-8 (one that cannot be encoded is replaced by one byte)."""
    size = len(output.key or b"") + len(output.value or b"")
    for name, value in output.headers:
        size += 4 * len(name) + len(value or b"") + _HEADER_FRAMING
    return size


def result(record: InboundRecord, topics: TopicNames, answer: CommandResult) -> OutboundRecord:
    """The answer on the command's own partition, so a waiting client assigns just that one.

    Keyed by stream id when known, else by the command's own key (what the client hashed)."""
    return _result(
        record, topics, answer.command_id, answer.stream_id, answer.status, encode(answer)
    )


def answer(
    record: InboundRecord,
    topics: TopicNames,
    processed_at: datetime,
    command_id: str,
    stream_id: str | None,
    status: str,
    version: int | None = None,
    event_ids: list[str] | None = None,
    code: str | None = None,
    reason: str | None = None,
) -> OutboundRecord:
    """`result` of a `CommandResult` with these fields, encoded without building the model.

    The fields must be valid (ids from a decoded command, `reason` at most 1,000 characters)."""
    value = encode_result_fields(
        command_id=command_id,
        stream_id=stream_id,
        status=status,
        version=version,
        event_ids=event_ids or [],
        code=code,
        reason=reason,
        processed_at=processed_at,
    )
    return _result(record, topics, command_id, stream_id, status, value)


def _result(
    record: InboundRecord,
    topics: TopicNames,
    command_id: str,
    stream_id: str | None,
    status: str,
    value: bytes,
) -> OutboundRecord:
    key = stream_id.encode() if stream_id else record.key
    headers = [("command_id", command_id.encode()), ("status", status.encode())]
    return OutboundRecord(topics.command_results, record.partition, key, value, headers)


def event(envelope: EventEnvelope, topics: TopicNames, partition: int) -> OutboundRecord:
    key = event_key(envelope.stream_id, envelope.version).encode()
    return OutboundRecord(
        topics.events, partition, key, encode(envelope), headers_for_event(envelope)
    )


def tombstones(stream_id: str, versions: range, topics: TopicNames,
               partition: int) -> list[OutboundRecord]:
    """A null value for each of the stream's event keys at `versions`: compaction then removes
    every record of those keys (an erasure, docs/erasure.md). The headers name the stream and
    version, so tools can tell an erasure from any other tombstone without the key's format."""
    return [
        OutboundRecord(topics.events, partition, event_key(stream_id, version).encode(), None,
                       [("stream_id", stream_id.encode()), ("version", str(version).encode())])
        for version in versions
    ]


def domain_event(
    event_data: Event,
    stream_id: str,
    version: int,
    now: datetime,
    causation_id: str,
    correlation_id: str,
    topics: TopicNames,
    partition: int,
) -> OutboundRecord:
    """`event(topics.to_envelope(...))`, the same bytes, without building the envelope."""
    event_id = event_id_for(stream_id, version)
    if len(event_id) > limits.MAX_MESSAGE_ID_LENGTH:
        # Past `MessageId`'s bound: the model path raises the same ValidationError as before.
        envelope = to_envelope(
            event_data, stream_id, version, event_id, now, causation_id, correlation_id
        )
        return event(envelope, topics, partition)
    type_name = type(event_data).__name__
    schema_version = type(event_data).schema_version
    value = encode_event_fields(
        event_id=event_id,
        type=type_name,
        schema_version=schema_version,
        stream_id=stream_id,
        version=version,
        data=event_data.model_dump(mode="json"),
        occurred_at=now,
        causation_id=causation_id,
        correlation_id=correlation_id,
    )
    headers = [
        ("type", type_name.encode()),
        ("stream_id", stream_id.encode()),
        ("version", str(version).encode()),
        ("schema_version", str(schema_version).encode()),
        ("correlation_id", correlation_id.encode()),
    ]
    key = event_key(stream_id, version).encode()
    return OutboundRecord(topics.events, partition, key, value, headers)


def snapshot(
    stream: StreamState, topics: TopicNames, partition: int, now: datetime
) -> OutboundRecord:
    """The stream's snapshot: the bytes of `encode(stream.to_snapshot(now))`, built directly."""
    value = encode_snapshot_fields(
        stream_id=stream.stream_id,
        aggregate_type=stream.aggregate_type,
        version=stream.version,
        state=aggregates.state_to_data(stream.state),
        recent_command_ids=list(stream.recent_command_ids),
        updated_at=now,
    )
    return OutboundRecord(topics.aggregates, partition, stream.stream_id.encode(), value, [])
