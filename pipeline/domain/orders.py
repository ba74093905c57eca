"""The order aggregate: created for an active customer, paid, shipped, or cancelled before shipping.

Cross-aggregate rule, and its limit: an order's customer must exist and be active, but the order's
writer cannot read the user's stream (it may live on another partition). `decide` asks the
`customer_status` lookup in its `DecisionContext`, which the processor feeds from a replicated,
eventually consistent read of every user's status (the aggregates topic). A user deactivated
concurrently may therefore still get an order accepted; compensating (cancelling such orders) is
left to the process managers (`projections.managers`, docs/process-managers.md), not to this
aggregate.

Money is integer minor units (cents) of the order's currency; totals are always computed here
(`topics.order_total`), and bounded at the command (`topics.CreateOrder`). The commands and events
are the contract's (`topics`); the state and the rules are here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from pipeline.domain.common import DecisionContext, Rejection
from topics import (
    CreateOrder,
    InvalidHistory,
    OrderCancelled,
    OrderCommand,
    OrderCreated,
    OrderEvent,
    OrderItem,
    OrderPaid,
    OrderShipped,
    PayOrder,
    ShipOrder,
    order_total,
)

OrderStatus = Literal["created", "paid", "shipped", "cancelled"]

CUSTOMER_INACTIVE = "customer.inactive"
"""The reason of a compensation for an order accepted while its customer was inactive (the
late-order process manager's). Checked here against the customer's status as this processor
knows it: a customer active again by then keeps the order (the manager may have decided before
it saw the reactivation: its facts arrive from several partitions, docs/process-managers.md)."""


class OrderState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: str
    items: tuple[OrderItem, ...]
    currency: str
    total: int
    status: OrderStatus = "created"
    payment_ref: str | None = None
    tracking: str | None = None


OrderDecision = list[OrderEvent] | Rejection


def decide(
    state: OrderState | None, command: OrderCommand, context: DecisionContext
) -> OrderDecision:
    """The events `command` causes on an order in `state`, or why it is refused. Pure."""
    if isinstance(command, CreateOrder):
        return _create(state, command, context)
    if state is None:
        return Rejection(code="order.not_found", reason="the order does not exist")
    if state.status == "cancelled":
        return Rejection(code="order.cancelled", reason="the order is cancelled")
    if isinstance(command, PayOrder):
        return _pay(state, command)
    if isinstance(command, ShipOrder):
        if state.status == "shipped":
            return Rejection(code="order.already_shipped", reason="the order is already shipped")
        if state.status != "paid":
            return Rejection(code="order.not_paid", reason="an order ships only once paid")
        return [OrderShipped(tracking=command.tracking)]
    if state.status == "shipped":
        return Rejection(code="order.already_shipped", reason="a shipped order cannot be cancelled")
    if (command.reason == CUSTOMER_INACTIVE
            and context.customer_status(state.customer_id) == "active"):
        return Rejection(code="order.customer_active",
                         reason=f"user {state.customer_id!r} is active: not cancelled for "
                                f"{CUSTOMER_INACTIVE}")
    return [OrderCancelled(reason=command.reason)]


def _create(
    state: OrderState | None, command: CreateOrder, context: DecisionContext
) -> OrderDecision:
    if state is not None:
        return Rejection(code="order.already_exists", reason="the order already exists")
    customer = context.customer_status(command.customer_id)
    if customer is None:
        return Rejection(code="order.unknown_customer", reason=f"no user {command.customer_id!r}")
    if customer != "active":
        return Rejection(
            code="order.customer_inactive", reason=f"user {command.customer_id!r} is {customer}"
        )
    total = order_total(command.items)
    return [
        OrderCreated(
            customer_id=command.customer_id,
            items=command.items,
            currency=command.currency,
            total=total,
        )
    ]


def _pay(state: OrderState, command: PayOrder) -> OrderDecision:
    if state.status != "created":
        return Rejection(code="order.already_paid", reason="the order is already paid")
    if command.amount is not None and command.amount != state.total:
        return Rejection(
            code="order.amount_mismatch",
            reason=f"amount {command.amount} differs from the total {state.total} {state.currency}",
        )
    return [OrderPaid(amount=state.total, payment_ref=command.payment_ref)]


def evolve(state: OrderState | None, event: OrderEvent) -> OrderState:
    """The order after `event`; raises `InvalidHistory` for an event that cannot follow `state`."""
    if isinstance(event, OrderCreated):
        if state is not None:
            raise InvalidHistory("OrderCreated on an existing order")
        return OrderState(
            customer_id=event.customer_id,
            items=event.items,
            currency=event.currency,
            total=event.total,
        )
    if state is None:
        raise InvalidHistory(f"{type(event).__name__} before OrderCreated")
    if isinstance(event, OrderPaid):
        return state.model_copy(update={"status": "paid", "payment_ref": event.payment_ref})
    if isinstance(event, OrderShipped):
        return state.model_copy(update={"status": "shipped", "tracking": event.tracking})
    return state.model_copy(update={"status": "cancelled"})
