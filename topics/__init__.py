"""The contract between write and read side: topic catalogue, envelopes, limits, partitioner,
upcasting.

The Kafka admin part (`apply`, `describe`, ...) is imported on first use, so that code needing
only the envelopes (the domain, the schemas) never loads confluent-kafka.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from topics import limits
from topics.catalogue import Catalogue, TopicSpec
from topics.envelopes import (
    CommandEnvelope,
    CommandResult,
    EventEnvelope,
    Snapshot,
    decode_command,
    decode_event,
    decode_result,
    decode_snapshot,
    encode,
    event_key,
    headers_for_command,
    headers_for_event,
    make_stream_id,
    parse_event_key,
    parse_stream_id,
    peek_command_id,
    read_headers,
)
from topics.errors import (
    AdminError,
    BrokerUnavailable,
    DecodeError,
    InvalidEnvelope,
    InvalidStreamId,
    InvalidTopicName,
    NotJson,
    TooLarge,
    TopicCreationFailed,
    TopicsError,
    UpcastError,
)
from topics.limits import MAX_COMMAND_BYTES, MAX_RECORD_BYTES
from topics.partitioner import murmur2, partition_for
from topics.upcasting import Upcasters

if TYPE_CHECKING:
    from topics.admin import ApplyReport, Drift, TopicState, apply, describe

_LAZY = {"ApplyReport", "Drift", "TopicState", "apply", "describe"}

__all__ = [
    "MAX_COMMAND_BYTES",
    "MAX_RECORD_BYTES",
    "AdminError",
    "ApplyReport",
    "BrokerUnavailable",
    "Catalogue",
    "CommandEnvelope",
    "CommandResult",
    "DecodeError",
    "Drift",
    "EventEnvelope",
    "InvalidEnvelope",
    "InvalidStreamId",
    "InvalidTopicName",
    "NotJson",
    "Snapshot",
    "TooLarge",
    "TopicCreationFailed",
    "TopicSpec",
    "TopicState",
    "TopicsError",
    "UpcastError",
    "Upcasters",
    "apply",
    "decode_command",
    "decode_event",
    "decode_result",
    "decode_snapshot",
    "describe",
    "encode",
    "event_key",
    "headers_for_command",
    "headers_for_event",
    "limits",
    "make_stream_id",
    "murmur2",
    "parse_event_key",
    "parse_stream_id",
    "partition_for",
    "peek_command_id",
    "read_headers",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("topics.admin"), name)
    raise AttributeError(f"module 'topics' has no attribute {name!r}")
