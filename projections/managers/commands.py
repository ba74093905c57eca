"""A manager's `Cancel` as the record a client would produce to `<prefix>commands`. Pure.

The command id is deterministic (`decide.command_id_for`), and so is the rest of the envelope for
one fact (`issued_at` = the fact's event time, `issued_by` = `manager.<name>`, `correlation_id` =
the fact's, `expected_version` = the order's version the manager saw): a record sent again after a
crash is answered `duplicate` by the processor, which checks the id first.
"""

from __future__ import annotations

from dataclasses import dataclass

from projections.managers.decide import Cancel
from projections.managers.facts import Fact
from topics import CommandEnvelope, encode, headers_for_command, parse_stream_id, partition_for


@dataclass(frozen=True)
class OutgoingCommand:
    """One record for the commands topic: key = stream id, murmur2 partition."""

    key: bytes
    value: bytes
    partition: int
    headers: list[tuple[str, bytes]]
    envelope: CommandEnvelope


def cancel_order(cancel: Cancel, fact: Fact, partitions: int) -> OutgoingCommand:
    """The `CancelOrder` record for `cancel`, decided on `fact`, for a commands topic of
    `partitions` partitions; raises pydantic's `ValidationError` for an order id that a new
    command may not carry (longer than today's limit: written by an earlier release)."""
    _, order_id = parse_stream_id(cancel.order)
    envelope = CommandEnvelope.model_validate({
        "command_id": cancel.command_id,
        "type": "CancelOrder",
        "aggregate_id": order_id,
        "data": {"reason": cancel.reason},
        "expected_version": cancel.expected_version,
        "issued_at": fact.occurred_at,
        "issued_by": f"manager.{cancel.manager}",
        "correlation_id": fact.correlation_id,
    })
    return OutgoingCommand(
        key=cancel.order.encode(), value=encode(envelope),
        partition=partition_for(cancel.order, partitions),
        headers=headers_for_command(envelope, cancel.order), envelope=envelope)
