"""Deciding one command record: pure, no Kafka. Every record ends in exactly one `Outcome`.

Order of checks: decode (else dead-lettered) -> known type (else dead-lettered + rejected) ->
right partition (else forwarded, answered once re-consumed there) -> duplicate command id ->
expected version -> the aggregate's `decide`.
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
from pipeline.processor import records
from pipeline.processor.config import TopicNames
from pipeline.processor.records import InboundRecord, OutboundRecord
from pipeline.processor.state import Overlay, StreamState, customer_status_of
from topics.envelopes import CommandEnvelope, decode_command, make_stream_id
from topics.envelopes import peek_command_id as peek
from topics.errors import DecodeError
from topics.partitioner import partition_for

Outcome = Literal["accepted", "rejected", "duplicate", "dead_lettered", "forwarded"]
CustomerLookup = Callable[[str], CustomerStatus | None]


_MAX_REASON = 1000
"""`CommandResult.reason`'s bound."""


class UnknownCommandType(Exception):
    """The DLQ error class of a well-formed command whose type no aggregate handles."""


@dataclass(frozen=True)
class Handled:
    """What became of one record: its outcome and the records to produce for it."""

    outcome: Outcome
    outputs: list[OutboundRecord]
    command_id: str | None = None
    stream_id: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class Batch:
    """What every decision of one transaction shares: the clock reading, the topology."""

    topics: TopicNames
    partitions: int
    now: datetime
    overlay: Overlay
    replica: CustomerLookup


def handle(record: InboundRecord, batch: Batch) -> Handled:
    """The outcome of one command record; state changes go into `batch.overlay` only."""
    try:
        command = decode_command(record.value or b"")
    except DecodeError as error:
        return _undecodable(record, batch, error)
    aggregate_type = contracts.aggregate_type_of(command.type)
    if aggregate_type is None:
        return _unknown_type(record, batch, command)
    stream_id = make_stream_id(aggregate_type, command.aggregate_id)
    owner = _partition_of(stream_id, batch.partitions)
    if owner != record.partition:
        return Handled("forwarded", [records.forward(record, owner)], command.command_id, stream_id)
    stream = batch.overlay.get(record.partition, stream_id, aggregate_type)
    return _decide(record, batch, command, stream)


@lru_cache(maxsize=1 << 16)
def _partition_of(stream_id: str, partitions: int) -> int:
    """`partition_for`, remembered: a stream's partition never changes for a partition count."""
    return partition_for(stream_id, partitions)


def _undecodable(record: InboundRecord, batch: Batch, error: DecodeError) -> Handled:
    outputs = [records.dead_letter(record, batch.topics, error)]
    command_id = peek(record.value or b"")
    code = f"command.{type(error).__name__}"
    if command_id is not None:
        outputs.append(
            _reply(record, batch, command_id, None, "rejected", code=code, reason=str(error))
        )
    return Handled("dead_lettered", outputs, command_id, None, code)


def _unknown_type(record: InboundRecord, batch: Batch, command: CommandEnvelope) -> Handled:
    reason = f"unknown command type {command.type!r}"
    error = UnknownCommandType(reason)
    outputs = [
        records.dead_letter(record, batch.topics, error),
        _reply(
            record,
            batch,
            command.command_id,
            None,
            "rejected",
            code="command.unknown_type",
            reason=reason,
        ),
    ]
    return Handled("dead_lettered", outputs, command.command_id, None, "command.unknown_type")


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
    batch.overlay.put(record.partition, after)
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
    return Handled("accepted", outputs, command.command_id, stream.stream_id)


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
    if reason is not None:
        reason = reason[:_MAX_REASON]
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
        reason,
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
