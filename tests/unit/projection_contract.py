"""The store contract, run against `FakeStore` (unit) and `PostgresStore` (integration)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from pipeline.domain import orders, users
from projections.postgres.fake import FakeStore
from projections.postgres.store import PostgresStore
from projections.queries import GetUser, QueryTimeout, get_user
from projections.runtime import Batch, PoisonEvent
from projections.runtime.classify import decode
from tests.support.events import as_records, envelope, order_created, stream

T = TypeVar("T")
NOW = datetime(2024, 5, 15, 12, tzinfo=UTC)  # a Wednesday


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def items(envelopes: list[Any]) -> list[Any]:
    return [decode(record) for record in as_records(envelopes)]


async def apply(store: FakeStore | PostgresStore, envelopes: list[Any]) -> Any:
    records = as_records(envelopes)
    return await store.apply(Batch([decode(r) for r in records],
                                   checkpoints={("t.events", r.partition): r.offset
                                                for r in records}))


class StoreContract:
    """Subclasses provide a `store` fixture (started, empty)."""

    def test_user_lifecycle_and_idempotence(self, store: Any) -> None:
        history = stream("user-u1", [users.UserCreated(email="a@x.io", name="A"),
                                     users.UserEmailChanged(email="b@x.io"),
                                     users.UserDeactivated(reason=None)])

        async def scenario() -> None:
            first = await apply(store, history)
            again = await apply(store, history)
            assert (first.applied, first.skipped) == (3, 0)
            assert (again.applied, again.skipped) == (0, 3)
            user = await store.user("u1")
            assert user is not None
            assert (user.email, user.name, user.active, user.version) == ("b@x.io", "A", False, 3)
        run(scenario())

    def test_patch_before_create_is_poison_and_nothing_written(self, store: Any) -> None:
        good = envelope("user-u2", 1, users.UserCreated(email="c@x.io", name="C"))
        bad = envelope("user-u3", 2, users.UserNameChanged(name="Z"))

        async def scenario() -> None:
            with pytest.raises(PoisonEvent) as raised:
                await apply(store, [good, bad])
            assert raised.value.index == 1
            assert await store.user("u2") is None
        run(scenario())

    def test_stats_under_update_deactivate_reactivate(self, store: Any) -> None:
        old = NOW - timedelta(days=30)
        monday = datetime(2024, 5, 13, 9, tzinfo=UTC)

        async def scenario() -> None:
            await apply(store, [envelope("user-o", 1, users.UserCreated(email="o@x.io", name="O"),
                                         old),
                                envelope("user-w", 1, users.UserCreated(email="w@x.io", name="W"),
                                         monday),
                                envelope("user-t", 1, users.UserCreated(email="t@x.io", name="T"),
                                         NOW)])
            await apply(store, [envelope("user-o", 2, users.UserDeactivated(reason=None), NOW),
                                envelope("user-t", 2, users.UserNameChanged(name="T2"), NOW)])
            stats = await store.user_stats(NOW)
            assert (stats.total, stats.active, stats.new_today, stats.new_this_week) == (3, 2, 1, 2)
            await apply(store, [envelope("user-o", 3, users.UserReactivated(), NOW)])
            await apply(store, [envelope("user-o", 3, users.UserReactivated(), NOW)])
            stats = await store.user_stats(NOW)
            assert (stats.total, stats.active) == (3, 3)
        run(scenario())

    def test_orders_and_orders_for_user(self, store: Any) -> None:
        async def scenario() -> None:
            await apply(store, stream("order-o1", [order_created("o1", "u9", 500),
                                                   orders.OrderPaid(amount=500, payment_ref="p"),
                                                   orders.OrderShipped(tracking="t")]))
            await apply(store, stream("order-o2", [order_created("o2", "u9", 700),
                                                   orders.OrderCancelled(reason="r")]))
            order = await store.order("o1")
            assert order is not None
            assert (order.status, order.tracking, order.version, order.total) == (
                "shipped", "t", 3, 500)
            assert len(await store.orders_for_user("u9")) == 2
        run(scenario())

    def test_checkpoints_and_min_version(self, store: Any) -> None:
        async def scenario() -> None:
            await apply(store, stream("user-u5", [users.UserCreated(email="e@x.io", name="E")]))
            assert sum(1 for _ in (await store.checkpoints("t.events"))) == 1
            user = await get_user(store, GetUser(id="u5", min_version=1))
            assert user is not None
            with pytest.raises(QueryTimeout):
                await get_user(store, GetUser(id="u5", min_version=2, wait=0.2))
        run(scenario())
