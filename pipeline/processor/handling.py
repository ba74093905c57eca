"""Deciding one command record: pure, no Kafka. Every record ends in exactly one `RecordOutcome`.

Order of checks: readable headers -> decode -> known type -> right partition (else forwarded,
answered once re-consumed there) -> stream not quarantined -> duplicate command id -> expected
version -> the aggregate's `decide`. A failed check that is not a domain rejection raises, and
`handle` turns whatever was raised into a dead letter (+ rejected result): see `failures`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Literal

from pipeline.client.errors import UnknownCommandType
from pipeline.domain import aggregates
from pipeline.domain.common import (
    CustomerStatus,
    CustomerStatusLookup,
    DecisionContext,
    Rejection,
    check_expected_version,
)
from pipeline.processor import failures, records
from pipeline.processor.config import TopicNames
from pipeline.processor.failures import StreamQuarantined, UnreadableHeaders
from pipeline.processor.outcome import Handled, RecordOutcome
from pipeline.processor.records import InboundRecord, OutboundRecord
from pipeline.processor.state import Overlay, StateUnavailable, StreamState, customer_status_of
from topics import (
    CommandEnvelope,
    Event,
    aggregate_type_of,
    correlation_of,
    decode_command,
    event_id_for,
    limits,
    make_stream_id,
    partition_for,
)

ReplicaLookup = Callable[[int, str], CustomerStatus | None]
"""The status of a user (partition of its stream, user id) on a partition not owned here."""


@dataclass(frozen=True)
class BatchContext:
    """What every decision of one transaction shares: the clock reading, the topology, the
    transaction's overlay of states and the replica of the users of partitions not owned."""

    topics: TopicNames
    partitions: int
    now: datetime
    overlay: Overlay
    replica: ReplicaLookup
    rules: DecisionContext = field(init=False)
    """What the deciders of this batch are told: `now` and the users' statuses (`_customers`)."""

    def __post_init__(self) -> None:
        rules = DecisionContext(now=self.now, customer_status=_customers(self))
        object.__setattr__(self, "rules", rules)


def handle(record: InboundRecord, context: BatchContext) -> Handled:
    """The outcome of one command record. Never raises for a record's content: whatever building
    its outputs raises (decode, validate, decide, encode) or an output that would not fit a
    record ends the record as a dead letter (see `failures`). Atomic per record: the new state
    reaches `context.overlay` only once every output has been built and checked."""
    try:
        handled = _handle(record, context)
        failures.check_fits(handled.outputs)
    except StateUnavailable:
        raise  # the store failed, not the record: the batch and the process stop
    except Exception as error:
        return failures.failed(record, context.topics, context.now, error)
    if handled.change is not None:
        context.overlay.put(record.partition, handled.change)
    return handled


def _handle(record: InboundRecord, context: BatchContext) -> Handled:
    if record.unreadable_headers is not None:
        raise UnreadableHeaders(record.unreadable_headers)
    command = decode_command(record.value or b"")
    aggregate_type = aggregate_type_of(command.type)
    if aggregate_type is None:
        raise UnknownCommandType(
            f"unknown command type {command.type!r}", "command.unknown_type"
        )
    stream_id = make_stream_id(aggregate_type, command.aggregate_id)
    owner = _partition_of(stream_id, context.partitions)
    if owner != record.partition:
        return Handled("forwarded", [records.forward(record, owner)], command.command_id, stream_id)
    if context.overlay.is_quarantined(record.partition, stream_id):
        raise StreamQuarantined(
            f"stream {stream_id!r} is quarantined: its snapshot and its events could not be read"
        )
    stream = context.overlay.get(record.partition, stream_id, aggregate_type)
    return _decide(record, context, command, stream)


@lru_cache(maxsize=1 << 16)
def _partition_of(stream_id: str, partitions: int) -> int:
    """`partition_for`, remembered: a stream's partition never changes for a partition count."""
    return partition_for(stream_id, partitions)


def _decide(
    record: InboundRecord, context: BatchContext, command: CommandEnvelope, stream: StreamState
) -> Handled:
    if stream.has_seen(command.command_id):
        output = _reply(
            record, context, command.command_id, stream.stream_id, "duplicate", stream.version
        )
        return Handled("duplicate", [output], command.command_id, stream.stream_id)
    rejection = check_expected_version(stream.version, command.expected_version)
    if rejection is None:
        decision = aggregates.decide_command(
            command.type, stream.state, command.data, context.rules
        )
        if not isinstance(decision, Rejection):
            return _accept(record, context, command, stream, decision)
        rejection = decision
    output = _reply(
        record,
        context,
        command.command_id,
        stream.stream_id,
        "rejected",
        stream.version,
        code=rejection.code,
        reason=rejection.reason,
    )
    return Handled("rejected", [output], command.command_id, stream.stream_id, rejection.code)


def _accept(
    record: InboundRecord,
    context: BatchContext,
    command: CommandEnvelope,
    stream: StreamState,
    events: list[Event],
) -> Handled:
    correlation_id = correlation_of(command)
    outputs = [
        records.domain_event(
            event,
            stream.stream_id,
            stream.version + index,
            context.now,
            command.command_id,
            correlation_id,
            context.topics,
            record.partition,
        )
        for index, event in enumerate(events, start=1)
    ]
    after = stream.advanced(aggregates.fold(stream.state, events), len(events), command.command_id)
    if any(event.erases_stream for event in events):
        # Erasure: every earlier event key is tombstoned in this transaction, and the window of
        # command ids forgets the subject too.
        outputs.extend(records.tombstones(
            stream.stream_id, range(1, stream.version + 1), context.topics, record.partition))
        after = after.erased(command.command_id)
    event_ids = [
        event_id_for(stream.stream_id, stream.version + index)
        for index in range(1, len(events) + 1)
    ]
    outputs.append(records.snapshot(after, context.topics, record.partition, context.now))
    outputs.append(
        _reply(
            record,
            context,
            command.command_id,
            stream.stream_id,
            "accepted",
            after.version,
            event_ids,
        )
    )
    return Handled("accepted", outputs, command.command_id, stream.stream_id, change=after)


def _reply(
    record: InboundRecord,
    context: BatchContext,
    command_id: str,
    stream_id: str | None,
    status: Literal["accepted", "rejected", "duplicate"],
    version: int | None = None,
    event_ids: list[str] | None = None,
    code: str | None = None,
    reason: str | None = None,
) -> OutboundRecord:
    """The command's `CommandResult` record (`reason` cut to its bound)."""
    return records.answer(
        record,
        context.topics,
        context.now,
        command_id,
        stream_id,
        status,
        version,
        event_ids,
        code,
        None if reason is None else reason[: limits.MAX_ENVELOPE_TEXT_LENGTH],
    )


def _customers(context: BatchContext) -> CustomerStatusLookup:
    """A user of an owned partition as this batch left it (the overlay, then the committed
    state), any other from the replica of the partitions not owned here."""

    def lookup(user_id: str) -> CustomerStatus | None:
        try:
            stream_id = make_stream_id("user", user_id)
        except ValueError:
            return None
        partition = _partition_of(stream_id, context.partitions)
        if not context.overlay.owns(partition):
            return context.replica(partition, user_id)
        known = context.overlay.find(partition, stream_id)
        return customer_status_of(known) if known is not None else None

    return lookup


__all__ = [
    "BatchContext",
    "Handled",
    "RecordOutcome",
    "ReplicaLookup",
    "StreamQuarantined",
    "UnknownCommandType",
    "UnreadableHeaders",
    "handle",
]
