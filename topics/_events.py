"""The events: the facts of user and order streams, as both sides read them.

Text and money in an event hold only what every read model can store (`StoredText`,
`StoredMoney`). A model's `schema_version` is the one it writes; older versions are brought up to
it by `UPCASTERS` before validation.
"""

from __future__ import annotations

from topics._messages import Event
from topics._values import OrderItem, StoredMoney, StoredText


class UserCreated(Event):
    """v2: v1 carried `full_name` instead of `name` (see `topics.UPCASTERS`)."""

    schema_version = 2
    email: StoredText
    name: StoredText


class UserEmailChanged(Event):
    email: StoredText


class UserNameChanged(Event):
    name: StoredText


class UserDeactivated(Event):
    reason: StoredText | None = None


class UserReactivated(Event):
    pass


class UserForgotten(Event):
    """The user's last event: its earlier events are tombstoned in the same transaction, and
    every read model deletes what it held of the user (docs/erasure.md). Carries no personal
    data; `version` in its envelope is the stream's last."""

    erases_stream = True
    reason: StoredText
    requested_by: StoredText


class OrderCreated(Event):
    """v2: v1 had no `currency`; every v1 order was in EUR (see `topics.UPCASTERS`)."""

    schema_version = 2
    customer_id: StoredText
    items: tuple[OrderItem, ...]
    currency: StoredText
    total: StoredMoney


class OrderPaid(Event):
    amount: StoredMoney
    payment_ref: StoredText


class OrderShipped(Event):
    tracking: StoredText | None = None


class OrderCancelled(Event):
    reason: StoredText


UserEvent = (
    UserCreated | UserEmailChanged | UserNameChanged | UserDeactivated | UserReactivated
    | UserForgotten
)
OrderEvent = OrderCreated | OrderPaid | OrderShipped | OrderCancelled
