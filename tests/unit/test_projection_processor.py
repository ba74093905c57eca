"""The batch processor with the fake store: DLQ, parking, transient retries, counters,
and the property that duplicates and per-stream-ordered interleavings give one read model."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.postgres.fake import FakeStore
from projections.runtime import BatchProcessor, SourceRecord
from tests.support.events import as_records, envelope, order_created, stream
from topics import (
    OrderCancelled,
    OrderPaid,
    OrderShipped,
    UserCreated,
    UserDeactivated,
    UserForgotten,
    UserNameChanged,
    UserReactivated,
)


class ListDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[SourceRecord, BaseException]] = []

    async def send(self, record: SourceRecord, error: BaseException) -> None:
        self.sent.append((record, error))


async def _no_sleep(delay: float) -> None:
    return None


def processor(store: FakeStore) -> tuple[BatchProcessor, ListDeadLetters]:
    dlq = ListDeadLetters()
    return BatchProcessor("postgres", store, dlq, sleep=_no_sleep), dlq


def user_history(user_id: str) -> list[Any]:
    return stream(f"user-{user_id}", [UserCreated(email=f"{user_id}@x.io", name=user_id),
                                      UserNameChanged(name=f"{user_id}-2"),
                                      UserDeactivated(reason=None),
                                      UserReactivated()])


def test_poison_goes_to_dlq_and_parks_its_stream_while_others_go_on() -> None:
    store = FakeStore()
    proc, dlq = processor(store)
    good = as_records(user_history("g"))
    first, *later = as_records(user_history("p"))
    poison = SourceRecord(first.topic, first.partition, first.offset, first.key, b"{not json",
                          first.headers)

    async def scenario() -> None:
        await proc.start()
        await proc.process([poison, *later[:1]])
        await proc.process([*later[1:], *good])
    asyncio.run(scenario())

    assert [record.offset for record, _ in dlq.sent] == [first.offset]
    assert type(dlq.sent[0][1]).__name__ == "NotJson"
    assert "user-p" in proc.parked_streams
    assert "user-p" in store.blocked
    assert len(store.parked) == 3
    assert "p" not in store.users
    assert store.users["g"]["version"] == 4
    counts = proc.counters.snapshot()
    assert counts == {"consumed": 8, "applied": 4, "skipped": 0, "parked": 3, "dead_lettered": 1}


def test_an_erasure_of_a_blocked_stream_is_applied_and_releases_it() -> None:
    """Nothing of a forgotten person stays parked: its stream's `UserForgotten` is applied even
    behind a dead letter, and the parked records and the block are deleted with the batch."""
    store = FakeStore()
    proc, dlq = processor(store)
    first, *later = as_records(user_history("p"))
    poison = SourceRecord(first.topic, first.partition, first.offset, first.key, b"{not json",
                          first.headers)
    forget = as_records([envelope("user-p", 5, UserForgotten(reason="r", requested_by="dpo"))])
    forget = [SourceRecord(r.topic, r.partition, later[-1].offset + 1, r.key, r.value, r.headers)
              for r in forget]

    async def scenario() -> None:
        await proc.start()
        await proc.process([poison, *later[:2]])
        assert len(store.parked) == 2
        await proc.process([later[2], *forget])
    asyncio.run(scenario())

    assert len(dlq.sent) == 1
    assert "user-p" not in proc.parked_streams
    assert (store.blocked, store.parked) == ({}, {})
    assert "p" not in store.users
    assert store.forgotten_rows["p"]["version"] == 5
    counts = proc.counters.snapshot()
    assert counts == {"consumed": 5, "applied": 1, "skipped": 0, "parked": 3, "dead_lettered": 1}


def test_store_poison_is_dead_lettered_and_rest_of_batch_applied() -> None:
    store = FakeStore()
    proc, dlq = processor(store)
    orphan = envelope("user-x", 2, UserNameChanged(name="x"))
    records = as_records([orphan, *user_history("y")])
    asyncio.run(proc.process(records))
    assert len(dlq.sent) == 1
    assert "InvalidHistory" in type(dlq.sent[0][1]).__name__
    assert store.users["y"]["version"] == 4
    assert proc.counters.consumed == 5
    assert proc.counters.dead_lettered == 1


def test_transient_faults_are_retried_in_place() -> None:
    store = FakeStore()
    store.fail_next = 5
    proc, dlq = processor(store)
    asyncio.run(proc.process(as_records(user_history("t"))))
    assert store.users["t"]["version"] == 4
    assert not dlq.sent
    assert store.fail_next == 0


def order_history(order_id: str, customer_id: str, *, shipped: bool) -> list[Any]:
    """Created, paid, then shipped or cancelled."""
    ending: Any = (OrderShipped(tracking=f"t-{order_id}") if shipped
                   else OrderCancelled(reason="changed mind"))
    return stream(f"order-{order_id}", [order_created(order_id, customer_id, total=700),
                                        OrderPaid(amount=700, payment_ref=f"p-{order_id}"),
                                        ending])


USER_NAMES = ("a", "b", "c")


def histories() -> list[list[Any]]:
    """The streams the property interleaves: three users, and orders of two of them."""
    return [*(user_history(name) for name in USER_NAMES),
            order_history("o1", "a", shipped=True), order_history("o2", "a", shipped=False),
            order_history("o3", "b", shipped=True)]


def interleavings(draw: Any, streams: Sequence[Sequence[Any]]) -> list[Any]:
    """Every event of `streams`, each stream in its order, streams interleaved at random, with
    duplicate re-deliveries of already delivered events mixed in (`draw`: `st.data().draw`)."""
    cursors = [0] * len(streams)
    merged: list[Any] = []
    while any(cursor < len(s) for cursor, s in zip(cursors, streams, strict=True)):
        choices = [i for i, s in enumerate(streams) if cursors[i] < len(s)]
        index = draw(st.sampled_from(choices))
        # a duplicate re-delivery of anything already delivered of that stream, sometimes
        if cursors[index] and draw(st.booleans()):
            merged.append(streams[index][draw(st.integers(0, cursors[index] - 1))])
        merged.append(streams[index][cursors[index]])
        cursors[index] += 1
    return merged


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(1, 7))
def test_duplicates_and_interleavings_give_the_same_read_model(data: Any, size: int) -> None:
    streams = histories()
    reference = FakeStore()
    asyncio.run(processor(reference)[0].process(as_records([e for s in streams for e in s])))
    merged = interleavings(data.draw, streams)
    store = FakeStore()
    proc, dlq = processor(store)

    async def scenario() -> None:
        for start in range(0, len(merged), size):
            await proc.process(as_records(merged[start:start + size]))
    asyncio.run(scenario())
    assert store.users == reference.users
    assert store.orders == reference.orders
    assert not dlq.sent
    counts = proc.counters
    assert counts.consumed == counts.applied + counts.skipped == len(merged)


def test_an_assignment_reads_the_streams_another_instance_parked_since_the_start() -> None:
    """Two instances of one projector over one store: the stream the first parks, on a partition
    the second takes over later, stays parked there; one the first then releases is released
    at the second's next assignment."""
    store = FakeStore()
    first, first_dlq = processor(store)
    second, _ = processor(store)
    created, *later = as_records(user_history("p"))
    poison = SourceRecord(created.topic, created.partition, created.offset, created.key,
                          b"{not json", created.headers)
    forgotten = as_records(stream("user-p", [UserCreated(email="p@x.io", name="p"),
                                             UserNameChanged(name="p2"),
                                             UserDeactivated(reason=None),
                                             UserReactivated(),
                                             UserForgotten(reason="asked", requested_by="desk")]))

    async def scenario() -> None:
        await second.start()  # started before the stream was parked
        await first.start()
        await first.process([poison])
        assert "user-p" not in second.parked_streams
        await second.checkpoints(created.topic)  # the partition moves to the second
        assert "user-p" in second.parked_streams
        await second.process(later[:1])
        assert "p" not in store.users  # parked behind the dead letter, not applied
        await first.checkpoints(created.topic)
        await second.process(forgotten[-1:])  # an erasure releases the stream
        assert "user-p" not in second.parked_streams
        await first.checkpoints(created.topic)
        assert "user-p" not in first.parked_streams
    asyncio.run(scenario())

    assert [record.offset for record, _ in first_dlq.sent] == [created.offset]
    assert second.counters.snapshot()["parked"] == 1
