"""The store contracts, each run against the fake (unit) and the real store (integration).

`StoreContract` is the runtime's `Store` for any read model: idempotent by version, poison named
by its index with nothing written, checkpoints kept. `PostgresStoreContract` adds the rows and
queries (`FakeStore`, `PostgresStore`); `SearchStoreContract` the user documents
(`FakeSearchStore`, `SearchProjectorStore`). A fake and its real store pass the same tests, so
they cannot drift: both evolve rows (`fold.evolve_row`) or documents (`evolve_document`) by the
one rule of their read model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from projections.queries import GetUser, QueryTimeout, get_user
from projections.runtime import Applied, Batch, PoisonEvent
from projections.runtime.classify import decode
from projections.search.documents import UserDocument
from projections.search.writes import apply_documents
from tests.support.events import as_records, envelope, order_created, stream
from topics import (
    OrderCancelled,
    OrderPaid,
    OrderShipped,
    UserCreated,
    UserDeactivated,
    UserEmailChanged,
    UserForgotten,
    UserNameChanged,
    UserReactivated,
)

NOW = datetime(2024, 5, 15, 12, tzinfo=UTC)  # a Wednesday


def batch(envelopes: list[Any]) -> Batch:
    records = as_records(envelopes)
    return Batch([decode(r) for r in records],
                 checkpoints={("t.events", r.partition): r.offset for r in records})


async def apply(store: Any, envelopes: list[Any]) -> Applied:
    result: Applied = await store.apply(batch(envelopes))
    return result


class StoreContract:
    """Subclasses provide a `store` fixture (started, empty, on `runner`'s loop) and `user`."""

    @pytest.fixture
    def runner(self) -> Iterator[asyncio.Runner]:
        with asyncio.Runner() as runner:
            yield runner

    async def user(self, store: Any, user_id: str) -> tuple[str, str, bool, int] | None:
        """`(email, name, active, version)` of the user as the read model holds it."""
        raise NotImplementedError

    def test_user_lifecycle_and_idempotence(self, store: Any, runner: asyncio.Runner) -> None:
        history = stream("user-u1", [UserCreated(email="a@x.io", name="A"),
                                     UserEmailChanged(email="b@x.io"),
                                     UserDeactivated(reason=None)])

        async def scenario() -> None:
            first = await apply(store, history)
            again = await apply(store, history)
            assert (first.applied, first.skipped) == (3, 0)
            assert (again.applied, again.skipped) == (0, 3)
            assert await self.user(store, "u1") == ("b@x.io", "A", False, 3)
        runner.run(scenario())

    def test_change_before_create_is_poison_and_nothing_written(
        self, store: Any, runner: asyncio.Runner
    ) -> None:
        good = envelope("user-u2", 1, UserCreated(email="c@x.io", name="C"))
        bad = envelope("user-u3", 2, UserNameChanged(name="Z"))

        async def scenario() -> None:
            with pytest.raises(PoisonEvent) as raised:
                await apply(store, [good, bad])
            assert raised.value.index == 1
            assert await self.user(store, "u2") is None
            assert await store.checkpoints("t.events") == {}
        runner.run(scenario())

    def test_a_gap_is_poison(self, store: Any, runner: asyncio.Runner) -> None:
        """Both read models decide a gap alike (a stream's events are 1..n): the event after a
        missing version, or a stream that starts past version 1, is poison."""
        created = envelope("user-u4", 1, UserCreated(email="d@x.io", name="D"))
        skipped_one = envelope("user-u4", 3, UserNameChanged(name="E"))
        late_start = envelope("user-u5", 2, UserCreated(email="e@x.io", name="E"))

        async def scenario() -> None:
            with pytest.raises(PoisonEvent) as raised:
                await apply(store, [created, skipped_one])
            assert raised.value.index == 1
            assert await self.user(store, "u4") is None
            with pytest.raises(PoisonEvent) as raised:
                await apply(store, [late_start])
            assert raised.value.index == 0
            assert await self.user(store, "u5") is None
        runner.run(scenario())

    def test_checkpoints_and_parked_streams(self, store: Any, runner: asyncio.Runner) -> None:
        created = as_records([envelope("user-u6", 1, UserCreated(email="f@x.io",
                                                                       name="F"))])
        held = as_records([envelope("user-u7", 2, UserNameChanged(name="G"))])

        async def scenario() -> None:
            await store.apply(Batch([decode(created[0])], blocked=[("user-u7", held[0])],
                                    checkpoints={("t.events", 0): 41, ("t.events", 1): 7}))
            await store.apply(Batch([], checkpoints={("t.events", 0): 42}))
            assert await store.checkpoints("t.events") == {0: 42, 1: 7}
            assert await store.parked_streams() == {"user-u7"}
        runner.run(scenario())


    @pytest.mark.parametrize("one_batch", [True, False])
    def test_a_forgotten_user_never_comes_back(
        self, store: Any, runner: asyncio.Runner, one_batch: bool
    ) -> None:
        """Erasure: the user is gone, and a replay of its stream from before the log's
        compaction (the same events again, then the forget again) never writes it back."""
        history = stream("user-f1", [UserCreated(email="f1@x.io", name="Forget Me"),
                                     UserNameChanged(name="Forget Me Too"),
                                     UserForgotten(reason="art. 17", requested_by="dpo")])

        async def scenario() -> None:
            if one_batch:
                assert (await apply(store, history)).applied == 3
            else:
                for event in history:
                    await apply(store, [event])
            assert await self.user(store, "f1") is None
            replayed = await apply(store, history)
            assert (replayed.applied, replayed.skipped) == (0, 3)
            assert await self.user(store, "f1") is None
            for event in history[:2]:
                assert (await apply(store, [event])).skipped == 1
            assert await self.user(store, "f1") is None
        runner.run(scenario())

    def test_a_forget_alone_applies_after_compaction(
        self, store: Any, runner: asyncio.Runner
    ) -> None:
        """Once compacted, the log holds only the stream's `UserForgotten`: no gap, no row."""
        alone = envelope("user-f2", 4, UserForgotten(reason="r", requested_by="dpo"))

        async def scenario() -> None:
            assert (await apply(store, [alone])).applied == 1
            assert await self.user(store, "f2") is None
            late = envelope("user-f2", 1, UserCreated(email="f2@x.io", name="F"))
            assert (await apply(store, [late])).skipped == 1
            assert await self.user(store, "f2") is None
        runner.run(scenario())

    def test_an_event_after_the_forget_is_poison(
        self, store: Any, runner: asyncio.Runner
    ) -> None:
        history = stream("user-f3", [UserCreated(email="f3@x.io", name="F"),
                                     UserForgotten(reason="r", requested_by="dpo"),
                                     UserNameChanged(name="Back")])

        async def scenario() -> None:
            await apply(store, history[:2])
            with pytest.raises(PoisonEvent) as raised:
                await apply(store, history[2:])
            assert raised.value.index == 0
            assert await self.user(store, "f3") is None
        runner.run(scenario())


    def test_a_released_stream_leaves_nothing_parked(
        self, store: Any, runner: asyncio.Runner
    ) -> None:
        """A batch that parks a stream's records and releases the stream (its erasure is among
        the items) leaves no parked record and no block of it; other streams keep theirs."""
        held = as_records([envelope("user-r1", 2, UserNameChanged(name="R")),
                           envelope("user-r2", 2, UserNameChanged(name="S"))])
        forget = as_records([envelope("user-r1", 3, UserForgotten(reason="r",
                                                                  requested_by="dpo"))])

        async def scenario() -> None:
            await store.apply(Batch([], parked=[("user-r1", held[0])],
                                    blocked=[("user-r1", held[0]), ("user-r2", held[1])],
                                    checkpoints={("t.events", 0): 5}))
            assert await store.parked_streams() == {"user-r1", "user-r2"}
            await store.apply(Batch([decode(forget[0])], parked=[("user-r1", held[0])],
                                    checkpoints={("t.events", 0): 6}, released=["user-r1"]))
            assert await store.parked_streams() == {"user-r2"}
            assert await self.user(store, "r1") is None
        runner.run(scenario())


class PostgresStoreContract(StoreContract):
    """The rows and queries of the PostgreSQL read models."""

    async def user(self, store: Any, user_id: str) -> tuple[str, str, bool, int] | None:
        found = await store.user(user_id)
        return None if found is None else (found.email, found.name, found.active, found.version)

    def test_stats_under_update_deactivate_reactivate(
        self, store: Any, runner: asyncio.Runner
    ) -> None:
        old = NOW - timedelta(days=30)
        monday = datetime(2024, 5, 13, 9, tzinfo=UTC)

        async def scenario() -> None:
            await apply(store, [envelope("user-o", 1, UserCreated(email="o@x.io", name="O"),
                                         old),
                                envelope("user-w", 1, UserCreated(email="w@x.io", name="W"),
                                         monday),
                                envelope("user-t", 1, UserCreated(email="t@x.io", name="T"),
                                         NOW)])
            await apply(store, [envelope("user-o", 2, UserDeactivated(reason=None), NOW),
                                envelope("user-t", 2, UserNameChanged(name="T2"), NOW)])
            stats = await store.user_stats(NOW)
            assert (stats.total, stats.active, stats.new_today, stats.new_this_week) == (3, 2, 1, 2)
            await apply(store, [envelope("user-o", 3, UserReactivated(), NOW)])
            await apply(store, [envelope("user-o", 3, UserReactivated(), NOW)])
            stats = await store.user_stats(NOW)
            assert (stats.total, stats.active) == (3, 3)
        runner.run(scenario())

    def test_orders_and_orders_for_user(self, store: Any, runner: asyncio.Runner) -> None:
        async def scenario() -> None:
            await apply(store, stream("order-o1", [order_created("o1", "u9", 500),
                                                   OrderPaid(amount=500, payment_ref="p"),
                                                   OrderShipped(tracking="t")]))
            await apply(store, stream("order-o2", [order_created("o2", "u9", 700),
                                                   OrderCancelled(reason="r")]))
            order = await store.order("o1")
            assert order is not None
            assert (order.status, order.tracking, order.version, order.total) == (
                "shipped", "t", 3, 500)
            assert len(await store.orders_for_user("u9")) == 2
        runner.run(scenario())

    @pytest.mark.parametrize("one_batch", [True, False])
    def test_a_later_order_upsert_keeps_payment_ref_and_tracking(
        self, store: Any, runner: asyncio.Runner, one_batch: bool
    ) -> None:
        """The rule that once drifted (the fake reset both): an `OrderCreated` at a later version
        overwrites the order's lines, total and status, never its payment or shipment."""
        history = stream("order-o3", [order_created("o3", "u8", 500),
                                      OrderPaid(amount=500, payment_ref="pay-1"),
                                      OrderShipped(tracking="trk-1")])
        later = envelope("order-o3", 4, order_created("o3", "u8", 900), NOW)

        async def scenario() -> None:
            if one_batch:
                result = await apply(store, [*history, history[0], later])
                assert (result.applied, result.skipped) == (4, 1)
            else:
                await apply(store, history)
                await apply(store, [history[0]])
                assert (await apply(store, [later])).applied == 1
            order = await store.order("o3")
            assert order is not None
            assert (order.status, order.total, order.payment_ref, order.tracking) == (
                "created", 900, "pay-1", "trk-1")
            assert order.version == 4
            assert order.created_at < order.updated_at == NOW
        runner.run(scenario())

    def test_forgotten_users_leave_the_stats_and_their_orders(
        self, store: Any, runner: asyncio.Runner
    ) -> None:
        """Orders of a forgotten customer keep their money facts and lose their customer, those
        written before the forget and those a replay writes after it."""
        forget = envelope("user-g1", 2, UserForgotten(reason="r", requested_by="dpo"), NOW)

        async def scenario() -> None:
            await apply(store, [envelope("user-g1", 1, UserCreated(email="g1@x.io", name="G"),
                                         NOW),
                                envelope("user-g2", 1, UserCreated(email="g2@x.io", name="H"),
                                         NOW)])
            await apply(store, stream("order-p1", [order_created("p1", "g1", 500),
                                                   OrderPaid(amount=500, payment_ref="p")]))
            await apply(store, [forget, *stream("order-p2", [order_created("p2", "g1", 700)])])
            await apply(store, stream("order-p3", [order_created("p3", "g1", 900)]))
            stats = await store.user_stats(NOW)
            assert (stats.total, stats.active, stats.new_today) == (1, 1, 1)
            assert await store.orders_for_user("g1") == []
            for order_id, total, status in (("p1", 500, "paid"), ("p2", 700, "created"),
                                            ("p3", 900, "created")):
                order = await store.order(order_id)
                assert order is not None
                assert (order.customer_id, order.total, order.status) == (None, total, status)
        runner.run(scenario())

    def test_read_your_writes_of_a_forget(self, store: Any, runner: asyncio.Runner) -> None:
        """A client that waits for the forget's version gets "no such user" at once, not a
        timeout: a forgotten user never reaches any version again."""
        history = stream("user-w1", [UserCreated(email="w1@x.io", name="W"),
                                     UserForgotten(reason="r", requested_by="dpo")])

        async def scenario() -> None:
            await apply(store, history)
            assert await store.forgotten("w1") == 2
            assert await store.forgotten("w2") is None
            began = asyncio.get_running_loop().time()
            assert await get_user(store, GetUser(id="w1", min_version=2, wait=5)) is None
            assert await get_user(store, GetUser(id="w1", min_version=1, wait=5)) is None
            assert asyncio.get_running_loop().time() - began < 2
            with pytest.raises(QueryTimeout):
                await get_user(store, GetUser(id="w1", min_version=3, wait=0.2))
        runner.run(scenario())

    def test_checkpoints_and_min_version(self, store: Any, runner: asyncio.Runner) -> None:
        async def scenario() -> None:
            await apply(store, stream("user-u5", [UserCreated(email="e@x.io", name="E")]))
            assert sum(1 for _ in (await store.checkpoints("t.events"))) == 1
            user = await get_user(store, GetUser(id="u5", min_version=1))
            assert user is not None
            with pytest.raises(QueryTimeout):
                await get_user(store, GetUser(id="u5", min_version=2, wait=0.2))
        runner.run(scenario())


class SearchStoreContract(StoreContract):
    """The user documents of the search index."""

    async def user(self, store: Any, user_id: str) -> tuple[str, str, bool, int] | None:
        found = await store.documents.get_document(user_id)
        return None if found is None else (found.email, found.name, found.active, found.version)

    def test_order_events_are_not_applicable(self, store: Any, runner: asyncio.Runner) -> None:
        async def scenario() -> None:
            result = await apply(store, stream("order-o1", [order_created("o1", "u1", 500)]))
            assert (result.applied, result.skipped) == (0, 1)
        runner.run(scenario())

    def test_a_stale_write_is_already_applied(self, store: Any, runner: asyncio.Runner) -> None:
        """A writer that read before version 2 landed writes version 1: the store refuses it
        (a 409 in Elasticsearch) and it counts as already applied."""
        history = stream("user-u9", [UserCreated(email="i@x.io", name="I"),
                                     UserNameChanged(name="J")])

        async def scenario() -> None:
            await apply(store, history)
            stale = await apply_documents(_StaleReads(store.documents), history[:1])
            assert (stale.applied, stale.skipped) == (0, 1)
            assert await self.user(store, "u9") == ("i@x.io", "J", True, 2)
        runner.run(scenario())


    async def leave_document(self, store: Any, document: Any) -> None:
        """Put `document` in the index behind the store's back (what a rebuild's build did
        before the forget, or what a failed delete left)."""
        raise NotImplementedError

    def test_a_document_left_beside_a_marker_is_deleted(
        self, store: Any, runner: asyncio.Runner
    ) -> None:
        """A marker hides what is left behind from the fold: whatever batch touches the user
        next deletes the document again, even one whose events are all already applied."""
        history = stream("user-l1", [UserCreated(email="l1@x.io", name="Left Behind"),
                                     UserForgotten(reason="r", requested_by="dpo")])

        async def scenario() -> None:
            await apply(store, history)
            assert await self.user(store, "l1") is None
            await self.leave_document(store, UserDocument(
                user_id="l1", name="Left Behind", email="l1@x.io", active=True,
                created_at=NOW, updated_at=NOW, version=1))
            found = await store.documents.get_documents(["l1"])
            assert (found["l1"].forgotten, found["l1"].lingering) == (True, True)
            redelivered = await apply(store, history[:1])
            assert (redelivered.applied, redelivered.skipped) == (0, 1)
            found = await store.documents.get_documents(["l1"])
            assert (found["l1"].forgotten, found["l1"].lingering) == (True, False)
        runner.run(scenario())


class _StaleReads:
    """A store's documents whose reads see nothing (as if read before a concurrent write)."""

    def __init__(self, documents: Any) -> None:
        self._documents = documents

    async def get_documents(self, ids: Any) -> dict[str, None]:
        return dict.fromkeys(ids)

    async def index_documents(self, documents: Any) -> Any:
        return await self._documents.index_documents(documents)
