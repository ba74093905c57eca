"""Query handlers over the PostgreSQL read models: GetUser, GetUserStats, GetOrder, OrdersForUser.

Handlers are plain async functions over a `ReadModel` (`PostgresStore` in production, `FakeStore`
in tests). Read-your-writes: `min_version` (the version a command result reported) makes
`get_user`/`get_order` poll, bounded by `wait`, until the row has reached it, and raise
`QueryTimeout` otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from projections.postgres.models import Order, User, UserOrders, UserStats, summarise
from projections.runtime.errors import QueryTimeout

__all__ = ["GetOrder", "GetUser", "GetUserStats", "Order", "OrdersForUser", "QueryTimeout",
           "ReadModel", "User", "UserOrders", "UserStats", "get_order", "get_user",
           "get_user_stats", "orders_for_user"]

POLL_INTERVAL = 0.05
DEFAULT_WAIT = 5.0


class ReadModel(Protocol):
    async def user(self, user_id: str) -> User | None: ...
    async def forgotten(self, user_id: str) -> int | None:
        """The version at which user `user_id` was forgotten, `None` if it was not."""
    async def order(self, order_id: str) -> Order | None: ...
    async def orders_for_user(self, user_id: str) -> list[Order]: ...
    async def user_stats(self, now: datetime) -> UserStats: ...


class GetUser(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    min_version: int | None = None
    wait: float = DEFAULT_WAIT


class GetOrder(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    min_version: int | None = None
    wait: float = DEFAULT_WAIT


class GetUserStats(BaseModel):
    model_config = ConfigDict(frozen=True)


class OrdersForUser(BaseModel):
    model_config = ConfigDict(frozen=True)
    user_id: str


_Row = TypeVar("_Row", User, Order)


async def _at_least(read: Callable[[], Awaitable[_Row | None]], min_version: int | None,
                    wait: float, what: str,
                    gone: Callable[[], Awaitable[int | None]] | None = None) -> _Row | None:
    """The row once at `min_version`; `None` at once if it is absent and `gone` says it was
    erased at that version or later (a forgotten user never reaches any version again)."""
    deadline = time.monotonic() + wait
    while True:
        row = await read()
        if min_version is None or (row is not None and row.version >= min_version):
            return row
        if row is None and gone is not None and (erased := await gone()) is not None \
                and erased >= min_version:
            return None
        if time.monotonic() >= deadline:
            seen = "absent" if row is None else f"at version {row.version}"
            raise QueryTimeout(f"{what} is {seen}, not yet at version {min_version}, "
                               f"after {wait}s")
        await asyncio.sleep(POLL_INTERVAL)


async def get_user(model: ReadModel, query: GetUser) -> User | None:
    """The user, waiting (bounded) for `min_version`; `None` for no such user, and at once for
    a user forgotten at `min_version` or later."""
    return await _at_least(lambda: model.user(query.id), query.min_version, query.wait,
                           f"user {query.id!r}", lambda: model.forgotten(query.id))


async def get_order(model: ReadModel, query: GetOrder) -> Order | None:
    return await _at_least(lambda: model.order(query.id), query.min_version, query.wait,
                           f"order {query.id!r}")


async def get_user_stats(model: ReadModel, query: GetUserStats,
                         now: datetime | None = None) -> UserStats:
    return await model.user_stats(now or datetime.now(UTC))


async def orders_for_user(model: ReadModel, query: OrdersForUser) -> UserOrders:
    return summarise(query.user_id, await model.orders_for_user(query.user_id))

