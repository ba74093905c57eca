"""The contract between the write side and the read side: every message they exchange.

The topic catalogue, how to reach the brokers (`KafkaConnection`), the envelopes and their bytes,
the murmur2 partitioner, the limits, the dead letters, every command and event with its value
types, the type registries, the upcasters, and domain events to and from envelopes. Import from
here only (`from topics import UserCreated`): the modules behind it are private. `limits` and
`deadletter` are namespaces of constants.

The Kafka admin part (`apply`, `describe`, ...) is imported on first use, so that code needing
only the messages (the domain, the read side's projectors, the schemas) never loads
confluent-kafka.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from topics import _deadletter as deadletter
from topics import _limits as limits
from topics._catalogue import (
    COMMAND_RESULTS_RETENTION_MS,
    COMMANDS_RETENTION_MS,
    DLQ_RETENTION_MS,
    MANAGER_TABLES,
    Catalogue,
    TopicSpec,
)
from topics._codec import (
    decode_command,
    decode_event,
    decode_result,
    decode_snapshot,
    describe_validation_error,
    encode,
    encode_event_fields,
    encode_result_fields,
    encode_snapshot_fields,
    peek_command_id,
)
from topics._commands import (
    CancelOrder,
    CreateOrder,
    CreateUser,
    DeactivateUser,
    ForgetUser,
    OrderCommand,
    PayOrder,
    ReactivateUser,
    ShipOrder,
    UpdateUser,
    UserCommand,
)
from topics._connection import CLIENT_LOGGER, ClientConfig, KafkaConnection
from topics._conversion import event_id_for, from_envelope, to_envelope
from topics._envelopes import (
    CommandEnvelope,
    CommandResult,
    EventEnvelope,
    Headers,
    Snapshot,
    correlation_of,
    event_key,
    headers_for_command,
    headers_for_event,
    make_stream_id,
    parse_event_key,
    parse_stream_id,
    read_headers,
    remember_command,
)
from topics._events import (
    OrderCancelled,
    OrderCreated,
    OrderEvent,
    OrderPaid,
    OrderShipped,
    UserCreated,
    UserDeactivated,
    UserEmailChanged,
    UserEvent,
    UserForgotten,
    UserNameChanged,
    UserReactivated,
)
from topics._messages import Command, Event
from topics._partitioner import murmur2, partition_for, to_positive
from topics._registry import (
    COMMANDS,
    EVENTS,
    ORDER_AGGREGATE,
    UPCASTERS,
    USER_AGGREGATE,
    CommandSpec,
    EventSpec,
    aggregate_type_of,
    command_spec,
    event_spec,
)
from topics._schemas import SCHEMA_DIRECTORY, render_schema, schema_documents, write_schemas
from topics._upcasters import order_created_v1_to_v2, user_created_v1_to_v2
from topics._upcasting import Upcaster, Upcasters
from topics._values import (
    Amount,
    Currency,
    Email,
    MinorUnits,
    OrderItem,
    PersonName,
    Quantity,
    ReferenceId,
    Sku,
    StoredMoney,
    StoredText,
    Text,
    order_total,
)
from topics.errors import (
    AdminError,
    BrokerUnavailable,
    DecodeError,
    InvalidEnvelope,
    InvalidHistory,
    InvalidStreamId,
    InvalidTopicName,
    NotJson,
    TooLarge,
    TopicCreationFailed,
    TopicsError,
    UnknownMessageType,
    UpcastError,
)

if TYPE_CHECKING:
    from topics._admin import (
        ADMIN_TIMEOUT_S,
        ApplyReport,
        Drift,
        TopicState,
        apply,
        copartition_drift,
        describe,
        internal_drift,
        topic_drift,
    )

_LAZY = {
    "ADMIN_TIMEOUT_S",
    "ApplyReport",
    "Drift",
    "TopicState",
    "apply",
    "copartition_drift",
    "describe",
    "internal_drift",
    "topic_drift",
}

__all__ = [
    "ADMIN_TIMEOUT_S",
    "CLIENT_LOGGER",
    "COMMANDS",
    "COMMANDS_RETENTION_MS",
    "COMMAND_RESULTS_RETENTION_MS",
    "DLQ_RETENTION_MS",
    "EVENTS",
    "MANAGER_TABLES",
    "ORDER_AGGREGATE",
    "SCHEMA_DIRECTORY",
    "UPCASTERS",
    "USER_AGGREGATE",
    "AdminError",
    "Amount",
    "ApplyReport",
    "BrokerUnavailable",
    "CancelOrder",
    "Catalogue",
    "ClientConfig",
    "Command",
    "CommandEnvelope",
    "CommandResult",
    "CommandSpec",
    "CreateOrder",
    "CreateUser",
    "Currency",
    "DeactivateUser",
    "DecodeError",
    "Drift",
    "Email",
    "Event",
    "EventEnvelope",
    "EventSpec",
    "ForgetUser",
    "Headers",
    "InvalidEnvelope",
    "InvalidHistory",
    "InvalidStreamId",
    "InvalidTopicName",
    "KafkaConnection",
    "MinorUnits",
    "NotJson",
    "OrderCancelled",
    "OrderCommand",
    "OrderCreated",
    "OrderEvent",
    "OrderItem",
    "OrderPaid",
    "OrderShipped",
    "PayOrder",
    "PersonName",
    "Quantity",
    "ReactivateUser",
    "ReferenceId",
    "ShipOrder",
    "Sku",
    "Snapshot",
    "StoredMoney",
    "StoredText",
    "Text",
    "TooLarge",
    "TopicCreationFailed",
    "TopicSpec",
    "TopicState",
    "TopicsError",
    "UnknownMessageType",
    "UpcastError",
    "Upcaster",
    "Upcasters",
    "UpdateUser",
    "UserCommand",
    "UserCreated",
    "UserDeactivated",
    "UserEmailChanged",
    "UserEvent",
    "UserForgotten",
    "UserNameChanged",
    "UserReactivated",
    "aggregate_type_of",
    "apply",
    "command_spec",
    "copartition_drift",
    "correlation_of",
    "deadletter",
    "decode_command",
    "decode_event",
    "decode_result",
    "decode_snapshot",
    "describe",
    "describe_validation_error",
    "encode",
    "encode_event_fields",
    "encode_result_fields",
    "encode_snapshot_fields",
    "event_id_for",
    "event_key",
    "event_spec",
    "from_envelope",
    "headers_for_command",
    "headers_for_event",
    "internal_drift",
    "limits",
    "make_stream_id",
    "murmur2",
    "order_created_v1_to_v2",
    "order_total",
    "parse_event_key",
    "parse_stream_id",
    "partition_for",
    "peek_command_id",
    "read_headers",
    "remember_command",
    "render_schema",
    "schema_documents",
    "to_envelope",
    "to_positive",
    "topic_drift",
    "user_created_v1_to_v2",
    "write_schemas",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("topics._admin"), name)
    raise AttributeError(f"module 'topics' has no attribute {name!r}")
