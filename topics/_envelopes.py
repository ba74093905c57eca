"""The envelopes: command, event, result and snapshot models, stream ids, record keys, headers.

Commands come from any Kafka client, so their envelope forbids unknown fields and is size-bounded
at decode. Events, results and snapshots are written by the project itself and ignore unknown
envelope fields, so an older reader survives a rolling upgrade that adds one.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from topics._limits import (
    AGGREGATE_ID_PATTERN,
    AGGREGATE_TYPE_PATTERN,
    ID_CHARACTERS,
    MAX_AGGREGATE_ID_LENGTH,
    MAX_ENVELOPE_TEXT_LENGTH,
    MAX_VERSION,
    MESSAGE_ID_PATTERN,
    NO_CONTROL_CHARACTERS_PATTERN,
    READ_AGGREGATE_ID_PATTERN,
    READ_MAX_AGGREGATE_ID_LENGTH,
    READ_MAX_STREAM_ID_LENGTH,
    RECENT_COMMANDS_WINDOW,
    TYPE_NAME_PATTERN,
    reject_control_characters,
)
from topics.errors import InvalidStreamId

AggregateId = Annotated[str, Field(pattern=AGGREGATE_ID_PATTERN)]
"""A new command's aggregate id: at most `MAX_AGGREGATE_ID_LENGTH` id characters, so that every
key derived from it fits (see `topics.limits`)."""
MessageId = Annotated[str, Field(pattern=MESSAGE_ID_PATTERN)]
"""Printable ASCII without spaces, 1-128 characters: safe in keys, headers and logs."""
TypeName = Annotated[str, Field(pattern=TYPE_NAME_PATTERN)]
StreamId = Annotated[
    str,
    Field(min_length=3, max_length=READ_MAX_STREAM_ID_LENGTH, pattern=r"^[a-z][a-z0-9_]*-.+$"),
]
"""A stream id as read back (events, snapshots, results): tolerant of earlier, longer ids."""
Version = Annotated[int, Field(ge=0, le=MAX_VERSION)]
Text = Annotated[str, Field(max_length=MAX_ENVELOPE_TEXT_LENGTH)]
CommandText = Annotated[
    str,
    Field(
        max_length=MAX_ENVELOPE_TEXT_LENGTH,
        json_schema_extra={"pattern": NO_CONTROL_CHARACTERS_PATTERN},
    ),
    AfterValidator(reject_control_characters),
]
"""Text a client sends in an envelope: bounded, no control characters."""

_AGGREGATE_TYPE_RE = re.compile(AGGREGATE_TYPE_PATTERN)
_AGGREGATE_ID_RE = re.compile(AGGREGATE_ID_PATTERN)
_READ_AGGREGATE_ID_RE = re.compile(READ_AGGREGATE_ID_PATTERN)


class CommandEnvelope(BaseModel):
    """A request to change one stream; `command_id` is the client's idempotency key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: MessageId
    type: TypeName
    aggregate_id: AggregateId
    expected_version: Version | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    issued_at: AwareDatetime
    issued_by: CommandText | None = None
    correlation_id: MessageId | None = None


class EventEnvelope(BaseModel):
    """One fact in one stream, at `version` (1 for the first event); record key `stream@version`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: MessageId
    type: TypeName
    schema_version: Annotated[int, Field(ge=1)]
    stream_id: StreamId
    version: Annotated[int, Field(ge=1, le=MAX_VERSION)]
    data: dict[str, Any]
    occurred_at: AwareDatetime
    causation_id: MessageId | None = None
    correlation_id: MessageId | None = None


class CommandResult(BaseModel):
    """The answer to one command; `version` is the stream's version after it was handled."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    command_id: MessageId
    stream_id: StreamId | None
    status: Literal["accepted", "rejected", "duplicate"]
    version: Version | None = None
    event_ids: list[str] = Field(default_factory=list)
    code: str | None = None
    reason: Text | None = None
    processed_at: AwareDatetime


class Snapshot(BaseModel):
    """A stream's latest state (value of the compacted aggregates topic, key = stream id)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stream_id: StreamId
    aggregate_type: Annotated[str, Field(pattern=AGGREGATE_TYPE_PATTERN)]
    version: Version
    state: dict[str, Any] | None
    recent_command_ids: Annotated[list[str], Field(max_length=RECENT_COMMANDS_WINDOW)] = Field(
        default_factory=list
    )
    updated_at: AwareDatetime


def make_stream_id(aggregate_type: str, aggregate_id: str) -> str:
    """`"<aggregate_type>-<aggregate_id>"`, for example `user-u001`; the commands' record key.

    For new streams: the id is held to `MAX_AGGREGATE_ID_LENGTH` (`InvalidStreamId` otherwise).
    """
    return _stream_id(aggregate_type, aggregate_id, _AGGREGATE_ID_RE, MAX_AGGREGATE_ID_LENGTH)


def parse_stream_id(stream_id: str) -> tuple[str, str]:
    """Split a stream id at its first `-` (aggregate types never contain one).

    For stream ids read back: ids up to `READ_MAX_AGGREGATE_ID_LENGTH` (earlier releases) parse.
    """
    aggregate_type, sep, aggregate_id = stream_id.partition("-")
    if not sep:
        raise InvalidStreamId(f"stream id {stream_id!r} has no '-'")
    _stream_id(aggregate_type, aggregate_id, _READ_AGGREGATE_ID_RE, READ_MAX_AGGREGATE_ID_LENGTH)
    return aggregate_type, aggregate_id


def _stream_id(
    aggregate_type: str, aggregate_id: str, id_pattern: re.Pattern[str], max_length: int
) -> str:
    # fullmatch: a Python `$` would also match before a trailing newline.
    if not _AGGREGATE_TYPE_RE.fullmatch(aggregate_type):
        raise InvalidStreamId(f"invalid aggregate type {aggregate_type!r}")
    if not id_pattern.fullmatch(aggregate_id):
        raise InvalidStreamId(
            f"invalid aggregate id {aggregate_id[:200]!r}:"
            f" not 1-{max_length} characters of {ID_CHARACTERS}"
        )
    return f"{aggregate_type}-{aggregate_id}"


def event_key(stream_id: str, version: int) -> str:
    """`"<stream_id>@<version>"`: unique per event, so compaction never drops history."""
    return f"{stream_id}@{version}"


def parse_event_key(key: str) -> tuple[str, int]:
    """Inverse of `event_key` (stream ids never contain `@`)."""
    stream_id, sep, version = key.rpartition("@")
    if not sep or not (version.isascii() and version.isdigit()):
        raise InvalidStreamId(f"event key {key!r} is not '<stream_id>@<version>'")
    parse_stream_id(stream_id)
    return stream_id, int(version)


def remember_command(recent_command_ids: list[str], command_id: str) -> list[str]:
    """The window after `command_id` was handled: appended, oldest dropped beyond the bound."""
    return [*recent_command_ids, command_id][-RECENT_COMMANDS_WINDOW:]



Headers = list[tuple[str, bytes]]


def headers_for_event(envelope: EventEnvelope) -> Headers:
    """Headers that let tools route an event without decoding its value; `correlation_id` (the
    command's, see `correlation_of`) when the event has one."""
    headers = [
        ("type", envelope.type.encode()),
        ("stream_id", envelope.stream_id.encode()),
        ("version", str(envelope.version).encode()),
        ("schema_version", str(envelope.schema_version).encode()),
    ]
    if envelope.correlation_id is not None:
        headers.append(("correlation_id", envelope.correlation_id.encode()))
    return headers


def correlation_of(envelope: CommandEnvelope) -> str:
    """The command's correlation id: its own, or else its command id (a command that names none
    starts its own conversation). Its events carry it, in their value and their headers."""
    return envelope.correlation_id or envelope.command_id


def headers_for_command(envelope: CommandEnvelope, stream_id: str) -> Headers:
    """Headers that let tools route a command without decoding its value, and follow it
    (`correlation_id`, see `correlation_of`)."""
    return [
        ("type", envelope.type.encode()),
        ("stream_id", stream_id.encode()),
        ("command_id", envelope.command_id.encode()),
        ("correlation_id", correlation_of(envelope).encode()),
    ]


def read_headers(headers: list[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Headers as a dict of text (as confluent-kafka returns them; last value of a name wins)."""
    if not headers:
        return {}
    return {name: (value or b"").decode("utf-8", errors="replace") for name, value in headers}
