"""Send commands to the pipeline and wait for their results (the producer-side client)."""

from __future__ import annotations

from pipeline.client.commands import (
    check_command,
    command_from_document,
    known_types,
    new_command,
    stream_id_of,
)
from pipeline.client.errors import (
    ClientError,
    DeliveryFailed,
    InvalidCommand,
    InvalidCommandData,
    KafkaUnavailable,
    NotAuthorized,
    ResultTimeout,
    TopicMissing,
    UnknownCommandType,
)
from pipeline.client.kafka import CommandClient

__all__ = [
    "ClientError",
    "CommandClient",
    "DeliveryFailed",
    "InvalidCommand",
    "InvalidCommandData",
    "KafkaUnavailable",
    "NotAuthorized",
    "ResultTimeout",
    "TopicMissing",
    "UnknownCommandType",
    "check_command",
    "command_from_document",
    "known_types",
    "new_command",
    "stream_id_of",
]
