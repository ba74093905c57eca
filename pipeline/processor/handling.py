"""Deciding one command record: pure, no Kafka. Every record ends in exactly one `Outcome`.

Order of checks: decode -> known type -> right partition (else forwarded, answered once
re-consumed there) -> stream not quarantined -> duplicate command id -> expected version -> the
aggregate's `decide`. A failed check that is not a domain rejection raises, and `handle` turns
whatever was raised into a dead letter (+ rejected result): see `failures`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal

from pipeline import contracts
from pipeline.domain.common import (
    CustomerStatus,
    DecisionContext,
    Event,
    Rejection,
    check_expected_version,
)
from pipeline.processor import failures, records
from pipeline.processor.config import TopicNames
from pipeline.processor.failures import StreamQuarantined, UnknownCommandType
from pipeline.processor.outcome import Handled, Outcome
from pipeline.processor.records import InboundRecord, OutboundRecord
from pipeline.processor.state import Overlay, StreamState, customer_status_of
from topics.envelopes import CommandEnvelope, decode_command, make_stream_id
from topics.partitioner import partition_for

CustomerLookup = Callable[[str], CustomerStatus | None]


@dataclass(frozen=True)
class Batch:
    """What every decision of one transaction shares: the clock reading, the topology."""

    topics: TopicNames
    partitions: int
    now: datetime
    overlay: Overlay
    replica: CustomerLookup


def handle(record: InboundRecord, batch: Batch) -> Handled:
    """The outcome of one command record. Never raises for a record's content: whatever building
    its outputs raises (decode, validate, decide, encode) or an output that would not fit a
    record ends the record as a dead letter (see `failures`). Atomic per record: the new state
    reaches `batch.overlay` only once every output has been built and checked."""
    try:
        handled = _handle(record, batch)
        failures.check_fits(handled.outputs)
    except Exception as error:
        return failures.failed(record, batch.topics, batch.now, error)
    if handled.change is not None:
        batch.overlay.put(record.partition, handled.change)
    return handled


def _handle(record: InboundRecord, batch: Batch) -> Handled:
    command = decode_command(record.value or b"")
    aggregate_type = contracts.aggregate_type_of(command.type)
    if aggregate_type is None:
        raise UnknownCommandType(f"unknown command type {command.type!r}")
    stream_id = make_stream_id(aggregate_type, command.aggregate_id)
    owner = _partition_of(stream_id, batch.partitions)
    if owner != record.partition:
        return Handled("forwarded", [records.forward(record, owner)], command.command_id, stream_id)
    if batch.overlay.is_quarantined(record.partition, stream_id):
        raise StreamQuarantined(
            f"stream {stream_id!r} is quarantined: its snapshot and its events could not be read"
        )
    stream = batch.overlay.get(record.partition, stream_id, aggregate_type)
    return _decide(record, batch, command, stream)


@lru_cache(maxsize=1 << 16)
def _partition_of(stream_id: str, partitions: int) -> int:
    """`partition_for`, remembered: a stream's partition never changes for a partition count."""
    return partition_for(stream_id, partitions)


def _decide(
    record: InboundRecord, batch: Batch, command: CommandEnvelope, stream: StreamState
) -> Handled:
    if stream.has_seen(command.command_id):
        output = _reply(
            record, batch, command.command_id, stream.stream_id, "duplicate", stream.version
        )
        return Handled("duplicate", [output], command.command_id, stream.stream_id)
    rejection = check_expected_version(stream.version, command.expected_version)
    if rejection is None:
        context = DecisionContext(now=batch.now, customer_status=_customers(batch))
        decision = contracts.decide_command(command.type, stream.state, command.data, context)
        if not isinstance(decision, Rejection):
            return _accept(record, batch, command, stream, decision)
        rejection = decision
    output = _reply(
        record,
        batch,
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
    batch: Batch,
    command: CommandEnvelope,
    stream: StreamState,
    events: list[Event],
) -> Handled:
    correlation_id = command.correlation_id or command.command_id
    outputs = [
        records.domain_event(
            event,
            stream.stream_id,
            stream.version + index,
            batch.now,
            command.command_id,
            correlation_id,
            batch.topics,
            record.partition,
        )
        for index, event in enumerate(events, start=1)
    ]
    after = stream.advanced(contracts.fold(stream.state, events), len(events), command.command_id)
    event_ids = [
        contracts.event_id_for(stream.stream_id, stream.version + index)
        for index in range(1, len(events) + 1)
    ]
    outputs.append(records.snapshot(after, batch.topics, record.partition, batch.now))
    outputs.append(
        _reply(
            record,
            batch,
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
    batch: Batch,
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
        batch.topics,
        batch.now,
        command_id,
        stream_id,
        status,
        version,
        event_ids,
        code,
        None if reason is None else reason[: failures.MAX_REASON],
    )


def _customers(batch: Batch) -> CustomerLookup:
    """Users decided in this batch or owned here first, then the replica of all partitions."""

    def lookup(user_id: str) -> CustomerStatus | None:
        try:
            stream_id = make_stream_id("user", user_id)
        except ValueError:
            return None
        known = batch.overlay.find(stream_id)
        return customer_status_of(known) if known is not None else batch.replica(user_id)

    return lookup


__all__ = [
    "Batch",
    "CustomerLookup",
    "Handled",
    "Outcome",
    "StreamQuarantined",
    "UnknownCommandType",
    "handle",
]
