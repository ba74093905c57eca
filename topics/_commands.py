"""The commands: what a client may ask of a user or an order stream, validated at the boundary.

Money is integer minor units (cents) of the order's currency; an order's total is bounded here
(`limits.MAX_ORDER_TOTAL`, `validation.total_too_large`) so that every total the write side
accepts fits the read model's `bigint` and stays exact in JSON.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from topics._limits import MAX_ITEMS, MAX_ORDER_TOTAL
from topics._messages import Command
from topics._values import (
    Amount,
    Currency,
    Email,
    OrderItem,
    PersonName,
    ReferenceId,
    Text,
    order_total,
)


class CreateUser(Command):
    email: Email
    name: PersonName


class UpdateUser(Command):
    """Change email and/or name; fields left out or unchanged produce no event."""

    email: Email | None = None
    name: PersonName | None = None


class DeactivateUser(Command):
    reason: Text | None = None


class ReactivateUser(Command):
    pass


class ForgetUser(Command):
    """Erase a user: the personal data of its stream leaves every log and read model for good
    (docs/erasure.md). `reason` is the ground (a GDPR article 17 request, say) and `requested_by`
    who asked for it; both are kept in the stream's last event, so they must not be personal
    data of the subject. The user id is never usable again: later commands are rejected with
    `user.forgotten`."""

    reason: Text
    requested_by: Text


def _orderable(items: tuple[OrderItem, ...]) -> tuple[OrderItem, ...]:
    if not items:
        raise PydanticCustomError("no_items", "an order needs at least one item")
    total = order_total(items)
    if total > MAX_ORDER_TOTAL:
        raise PydanticCustomError(
            "total_too_large",
            "the order total {total} exceeds {limit} minor units",
            {"total": total, "limit": MAX_ORDER_TOTAL},
        )
    return items


class CreateOrder(Command):
    """Create an order for an active customer; the total (sum of quantity * unit_price over the
    items, in minor units) must not exceed 9007199254740991 (2^53 - 1)."""

    customer_id: ReferenceId
    items: Annotated[
        tuple[OrderItem, ...],
        Field(
            max_length=MAX_ITEMS,
            # JSON Schema cannot sum products: the total's bound is stated, checked here.
            json_schema_extra={"minItems": 1, "x-max-total": MAX_ORDER_TOTAL},
        ),
        AfterValidator(_orderable),
    ]
    currency: Currency


class PayOrder(Command):
    """Record a payment; `amount`, when given, must equal the order's total."""

    payment_ref: Text
    amount: Amount | None = None


class ShipOrder(Command):
    tracking: Text | None = None


class CancelOrder(Command):
    reason: Text


UserCommand = CreateUser | UpdateUser | DeactivateUser | ReactivateUser | ForgetUser
OrderCommand = CreateOrder | PayOrder | ShipOrder | CancelOrder
