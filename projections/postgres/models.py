"""The read models as returned to callers (pydantic), and the statistics' period boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

PAID_STATUSES = ("paid", "shipped")
"""An order counts as money spent once paid, and stays counted when shipped (not cancelled)."""


class User(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    email: str
    name: str
    active: bool
    created_at: datetime
    updated_at: datetime
    version: int


class Order(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    customer_id: str | None
    """`None` once the customer is forgotten (docs/erasure.md)."""
    items: list[dict[str, Any]]
    total: int
    currency: str
    status: str
    payment_ref: str | None = None
    tracking: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int


class UserStats(BaseModel):
    """Counted from the user rows: `new_today` since 00:00 UTC, `new_this_week` since Monday
    00:00 UTC (ISO week), both including users deactivated since."""

    model_config = ConfigDict(frozen=True)

    total: int
    active: int
    new_today: int
    new_this_week: int


class UserOrders(BaseModel):
    """A user's orders (newest first), their count, and money spent per currency (minor units;
    paid and shipped orders only)."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    order_count: int
    spent: dict[str, int]
    orders: list[Order]


def period_starts(now: datetime) -> tuple[datetime, datetime]:
    """`(start of today, start of this ISO week)` in UTC, for `now` (an aware datetime)."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day - timedelta(days=day.weekday())


def summarise(user_id: str, orders: list[Order]) -> UserOrders:
    """`UserOrders` from a user's order rows (the same rule as the `user_order_totals` view)."""
    spent: dict[str, int] = {}
    for order in orders:
        spent.setdefault(order.currency, 0)
        if order.status in PAID_STATUSES:
            spent[order.currency] += order.total
    ordered = sorted(orders, key=lambda order: (order.created_at, order.id), reverse=True)
    return UserOrders(user_id=user_id, order_count=len(orders), spent=spent, orders=ordered)
