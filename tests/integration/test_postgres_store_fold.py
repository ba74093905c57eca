"""`PostgresStore.apply` folds a batch per row; these pin what the fold must not change: a stream
created and changed in one batch, redeliveries inside a batch, the counts, and the index of poison
that only PostgreSQL detects (the batch is then applied again item by item)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from projections.postgres.fake import FakeStore
from projections.postgres.rows import USER_LOCK
from projections.postgres.store import PostgresStore
from projections.runtime import Applied, Batch, PoisonEvent
from projections.runtime.classify import decode
from tests.integration.projector_harness import fresh_database
from tests.support.events import as_records, envelope, order_created, stream
from topics import OrderPaid, OrderShipped, UserCreated, UserDeactivated, UserNameChanged


@pytest.fixture
def store(pg_dsn: str) -> Iterator[PostgresStore]:
    with fresh_database(pg_dsn) as (_, dsn):
        store = PostgresStore(dsn)
        asyncio.run(store.start())
        yield store
        asyncio.run(store.close())


def batch(envelopes: list[Any]) -> Batch:
    records = as_records(envelopes)
    return Batch([decode(record) for record in records],
                 checkpoints={("t.events", r.partition): r.offset for r in records})


async def both(store: PostgresStore, fake: FakeStore, envelopes: list[Any]) -> Applied:
    expected = await fake.apply(batch(envelopes))
    applied = await store.apply(batch(envelopes))
    assert applied == expected
    return applied


def test_create_and_changes_in_one_batch_with_redeliveries(store: PostgresStore) -> None:
    user = stream("user-f1", [UserCreated(email="a@x.io", name="A"),
                              UserNameChanged(name="B"),
                              UserDeactivated(reason=None)])
    order = stream("order-f2", [order_created("f2", "f1", 300),
                                OrderPaid(amount=300, payment_ref="pay"),
                                OrderShipped(tracking="trk")])
    fake = FakeStore()

    async def scenario() -> None:
        first = await both(store, fake, [user[0], order[0], user[1], user[0], order[1], user[2]])
        assert (first.applied, first.skipped) == (5, 1)
        again = await both(store, fake, [*order, user[2], *user])
        assert (again.applied, again.skipped) == (1, 6)
        assert await store.user("f1") == await fake.user("f1")
        assert await store.order("f2") == await fake.order("f2")
        found = await store.order("f2")
        assert found is not None
        assert (found.status, found.payment_ref, found.tracking) == ("shipped", "pay", "trk")
    asyncio.run(scenario())


def test_poison_is_reported_at_its_index_and_nothing_written(store: PostgresStore) -> None:
    """The fold fails, the batch is applied again item by item (each row evolved by the rule and
    written with one guarded upsert) up to the poison, then rolled back. (NUL in text, once poison
    only PostgreSQL saw, is now refused by the event models themselves.)"""
    good = envelope("user-g1", 1, UserCreated(email="g@x.io", name="G"))
    other = envelope("user-g2", 1, UserCreated(email="h@x.io", name="H"))
    missing = envelope("user-g3", 2, UserNameChanged(name="Z"))

    async def scenario() -> None:
        with pytest.raises(PoisonEvent) as raised:
            await store.apply(batch([good, other, missing]))
        assert raised.value.index == 2
        assert await store.user("g1") is None
        assert await store.user("g2") is None
    asyncio.run(scenario())


def test_release_applies_item_by_item_by_the_same_rule(store: PostgresStore) -> None:
    """`release` applies items one by one (read, `evolve_row`, one guarded upsert per row): the
    rows are those the fake's fold computes, a later order upsert included."""
    order = stream("order-r1", [order_created("r1", "u1", 300),
                                OrderPaid(amount=300, payment_ref="pay"),
                                OrderShipped(tracking="trk")])
    later = envelope("order-r1", 4, order_created("r1", "u1", 800))
    fake = FakeStore()

    async def scenario() -> None:
        expected = await fake.apply(batch([*order, order[1], later]))
        items = batch([*order, order[1], later]).items
        assert await store.release("order-r1", list(items)) == expected
        assert await store.order("r1") == await fake.order("r1")
        found = await store.order("r1")
        assert found is not None
        assert (found.total, found.payment_ref, found.tracking) == (800, "pay", "trk")
    asyncio.run(scenario())


def test_a_forget_never_runs_beside_another_writer_of_the_user(pg_dsn: str) -> None:
    """A writer of an older event of the user (a zombie member's late batch), or of an order
    for the customer (another instance, another partition), waits for a forget in flight, and
    then reads its marker: the row is not written back, and the order has no customer."""
    late = batch(stream("user-z1", [UserCreated(email="z1@x.io", name="Zombie")])
                 + stream("order-z2", [order_created("z2", "z1", 700)]))

    async def scenario(dsn: str) -> None:
        store = PostgresStore(dsn)
        await store.start()
        async with await psycopg.AsyncConnection.connect(dsn) as forget:
            # A forget in flight, as `FORGET` writes it under the user's exclusive lock.
            async with forget.transaction():
                await forget.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema() || ':z1'))",
                    (USER_LOCK,))
                writer = asyncio.create_task(store.apply(late))
                await asyncio.sleep(0.5)
                assert not writer.done()
                await forget.execute("INSERT INTO forgotten_users (id, version, forgotten_at)"
                                     " VALUES ('z1', 2, now())")
            result = await writer
        assert (result.applied, result.skipped) == (1, 1)
        assert await store.user("z1") is None
        order = await store.order("z2")
        assert order is not None
        assert order.customer_id is None
        await store.close()

    with fresh_database(pg_dsn) as (_, dsn):
        asyncio.run(scenario(dsn))
