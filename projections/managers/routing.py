"""Stage one, pure: an event of a user or order stream → the fact to forward, or why not.

Facts go to the customer's partition of the facts topic. An order's later events (`OrderPaid`,
`OrderShipped`, `OrderCancelled`) do not name the customer, so the router remembers each order's
customer when it sees `OrderCreated` (`Forward.remember`, kept in the router's table, which lives
with the order stream's partition of the events topic: one stream's events are read in order by
one member, so an order's creation is always remembered before its later events are routed).
"""

from __future__ import annotations

from dataclasses import dataclass

from projections.managers.facts import (
    ORDER_CLOSED,
    ORDER_CREATED,
    USER_ACTIVE,
    USER_DEACTIVATED,
    USER_FORGOTTEN,
    Fact,
)
from projections.runtime.records import Item
from topics import (
    OrderCancelled,
    OrderCreated,
    OrderPaid,
    OrderShipped,
    UserCreated,
    UserDeactivated,
    UserForgotten,
    UserReactivated,
    parse_stream_id,
)

USER_KINDS = {UserCreated: USER_ACTIVE, UserReactivated: USER_ACTIVE,
              UserDeactivated: USER_DEACTIVATED, UserForgotten: USER_FORGOTTEN}
CLOSING = (OrderPaid, OrderShipped, OrderCancelled)


@dataclass(frozen=True)
class Forward:
    """Send `fact` to the facts topic; first remember `remember` (order stream → customer)."""

    fact: Fact
    remember: tuple[str, str] | None = None


@dataclass(frozen=True)
class Ignore:
    """Nothing to forward (counted as skipped, by `reason`)."""

    reason: str


Routed = Forward | Ignore


def route(item: Item, customer_of_order: str | None) -> Routed:
    """The fact `item` gives, if any; `customer_of_order` is what the router remembered for the
    item's stream (`None`: nothing). Pure; never raises."""
    event = item.event
    envelope = item.envelope

    def fact(customer: str, kind: str) -> Fact:
        return Fact(customer=customer, kind=kind, source=envelope.stream_id,
                    version=envelope.version, occurred_at=envelope.occurred_at.isoformat(),
                    correlation_id=envelope.correlation_id)

    kind = USER_KINDS.get(type(event))
    if kind is not None:
        if not envelope.stream_id.startswith("user-"):
            return Ignore("user event on a stream that is not a user's")
        return Forward(fact(envelope.stream_id, kind))
    if isinstance(event, OrderCreated):
        try:
            customer = f"user-{event.customer_id}"
            parse_stream_id(customer)
        except Exception:
            return Ignore("order for a customer id that is not a valid user id")
        return Forward(fact(customer, ORDER_CREATED), remember=(envelope.stream_id, customer))
    if isinstance(event, CLOSING):
        if customer_of_order is None:
            return Ignore("order event before any OrderCreated of its stream")
        return Forward(fact(customer_of_order, ORDER_CLOSED))
    return Ignore("not an event the managers act on")
