"""Build and check command envelopes at the edge (uuid and clock belong here, not in the domain)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from pipeline.client.errors import InvalidCommandData, UnknownCommandType
from pipeline.domain.aggregates import parse_command
from pipeline.domain.common import Rejection
from topics import (
    COMMANDS,
    CommandEnvelope,
    InvalidStreamId,
    aggregate_type_of,
    describe_validation_error,
    make_stream_id,
)


def new_command(
    type: str,
    aggregate_id: str,
    data: Mapping[str, Any] | None = None,
    *,
    command_id: str | None = None,
    expected_version: int | None = None,
    issued_by: str | None = None,
    correlation_id: str | None = None,
    now: datetime | None = None,
) -> CommandEnvelope:
    """A command envelope with a fresh uuid4 `command_id` and `issued_at=now` (UTC by default).

    Only the envelope is validated here (raises `InvalidCommandData`); `check_command` validates
    the type and data against the contracts. Reuse a `command_id` to retry: the processor answers
    a repeated id with a `duplicate` result and no new events.
    """
    return _envelope(
        {
            "command_id": command_id or str(uuid.uuid4()),
            "type": type,
            "aggregate_id": aggregate_id,
            "expected_version": expected_version,
            "data": dict(data or {}),
            "issued_at": now or datetime.now(UTC),
            "issued_by": issued_by,
            "correlation_id": correlation_id,
        }
    )


def command_from_document(document: object, *, now: datetime | None = None) -> CommandEnvelope:
    """A full envelope, or the short form `{type, aggregate_id, data, ...}` with the rest filled in.

    Missing `command_id` gets a uuid4, missing `issued_at` gets `now` (UTC by default); unknown
    fields are refused. Raises `InvalidCommandData`.
    """
    if not isinstance(document, dict):
        raise InvalidCommandData(f"a command must be a JSON object, got {type(document).__name__}")
    filled = dict(document)
    filled.setdefault("command_id", str(uuid.uuid4()))
    filled.setdefault("issued_at", now or datetime.now(UTC))
    return _envelope(filled)


def _envelope(fields: Mapping[str, Any]) -> CommandEnvelope:
    try:
        return CommandEnvelope.model_validate(fields)
    except ValidationError as error:
        raise InvalidCommandData(
            f"invalid command envelope: {describe_validation_error(error)}", "validation.envelope"
        ) from None


def known_types() -> list[str]:
    """Every command type the processor handles, sorted."""
    return sorted(COMMANDS)


def stream_id_of(command: CommandEnvelope) -> str:
    """The stream (record key) `command` addresses; raises `UnknownCommandType`."""
    aggregate_type = aggregate_type_of(command.type)
    if aggregate_type is None:
        raise UnknownCommandType(
            f"unknown command type {command.type!r}; known types: {', '.join(known_types())}",
            "command.unknown_type",
        )
    try:
        return make_stream_id(aggregate_type, command.aggregate_id)
    except InvalidStreamId as error:
        raise InvalidCommandData(str(error), "validation.aggregate_id") from None


def check_command(command: CommandEnvelope) -> None:
    """Refuse locally what the processor would reject as input (unknown type, invalid data).

    Raises `UnknownCommandType` or `InvalidCommandData` (its `code` is the processor's
    `validation.*` code). Business rules (does the user exist?) are left to the processor.
    """
    stream_id_of(command)
    parsed = parse_command(command.type, command.data)
    if isinstance(parsed, Rejection):
        raise InvalidCommandData(f"invalid {command.type} data: {parsed.reason}", parsed.code)
