"""The pure projector: one event → the row operations that bring the read model up to it.

No I/O. Every operation carries the event's version and time; what it does to a row is
`fold.evolve_row` (the one rule every store uses): applied only where the row's version is lower
(`Put*`: insert or overwrite; `Patch`: set the named columns only), so redelivered events change
nothing. A patch for a row that does not exist is an impossible history: the store reports it as
`PoisonEvent`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from projections.runtime.records import Item
from topics import (
    OrderCancelled,
    OrderCreated,
    OrderPaid,
    OrderShipped,
    UserCreated,
    UserDeactivated,
    UserEmailChanged,
    UserEvent,
    UserForgotten,
    UserNameChanged,
    UserReactivated,
    parse_stream_id,
)


@dataclass(frozen=True)
class PutUser:
    user_id: str
    email: str
    name: str
    active: bool
    at: datetime
    version: int


@dataclass(frozen=True)
class Forget:
    """Erase user `user_id`: its row leaves `users` for a marker in `forgotten_users` (no
    personal data: id, version, time) that keeps every older event of the stream from writing
    the row again, and its orders lose their customer (docs/erasure.md)."""

    user_id: str
    at: datetime
    version: int


@dataclass(frozen=True)
class PutOrder:
    order_id: str
    customer_id: str | None
    """`None` once the customer is forgotten."""
    items: list[dict[str, Any]]
    total: int
    currency: str
    status: str
    at: datetime
    version: int


@dataclass(frozen=True)
class Patch:
    """Set `changes` (column → value) on row `row_id` of `table` ("users" or "orders")."""

    table: str
    row_id: str
    changes: dict[str, Any] = field(hash=False)
    at: datetime
    version: int


RowOp = PutUser | PutOrder | Patch | Forget


def project(item: Item) -> list[RowOp]:
    """The row operations for `item` (an empty list for an event with no read-model effect)."""
    _, row_id = parse_stream_id(item.stream_id)
    event, at, version = item.event, item.envelope.occurred_at, item.envelope.version
    if isinstance(event, UserCreated):
        return [PutUser(row_id, event.email, event.name, True, at, version)]
    if isinstance(event, UserForgotten):
        return [Forget(row_id, at, version)]
    if isinstance(event, OrderCreated):
        items = [line.model_dump(mode="json") for line in event.items]
        return [PutOrder(row_id, event.customer_id, items, event.total, event.currency,
                         "created", at, version)]
    changes = _changes(event)
    if changes is None:
        return []
    table = "users" if isinstance(event, UserEvent) else "orders"
    return [Patch(table, row_id, changes, at, version)]


def _changes(event: object) -> dict[str, Any] | None:
    match event:
        case UserEmailChanged(email=email):
            return {"email": email}
        case UserNameChanged(name=name):
            return {"name": name}
        case UserDeactivated():
            return {"active": False}
        case UserReactivated():
            return {"active": True}
        case OrderPaid(payment_ref=payment_ref):
            return {"status": "paid", "payment_ref": payment_ref}
        case OrderShipped(tracking=tracking):
            return {"status": "shipped", "tracking": tracking}
        case OrderCancelled():
            return {"status": "cancelled"}
    return None
