"""`retry_projector` over a fake store: stream order by version, no-op once released, poison."""

from __future__ import annotations

import asyncio

from pipeline.domain import users
from projections.operations.dlq import DlqEntry, retry_projector
from projections.runtime.errors import PoisonEvent
from projections.runtime.records import Applied, Item, SourceRecord
from tests.support.events import as_records, envelope

TOPIC = "t.events"


class FakeOperableStore:
    """The operations side of a store, in memory; `refuse` makes `release` raise poison."""

    def __init__(self, blocked: dict[str, tuple[str, int, int]],
                 parked: list[SourceRecord], refuse: bool = False) -> None:
        self._blocked = dict(blocked)
        self._parked = list(parked)
        self._refuse = refuse
        self.released: list[list[int]] = []

    async def blocked(self) -> dict[str, tuple[str, int, int]]:
        return dict(self._blocked)

    async def parked_records(self, stream_id: str | None = None) -> list[SourceRecord]:
        return list(self._parked)

    async def release(self, stream_id: str, items: list[Item]) -> Applied:
        if self._refuse:
            raise PoisonEvent(0, ValueError("still impossible"))
        self.released.append([item.envelope.version for item in items])
        del self._blocked[stream_id]
        self._parked.clear()
        return Applied(len(items), 0)


def records() -> list[SourceRecord]:
    """user-a: version 2 (dead-lettered), 3 (parked), then the missing 1 (parked)."""
    return as_records([envelope("user-a", 2, users.UserNameChanged(name="Two")),
                       envelope("user-a", 3, users.UserEmailChanged(email="a3@x.io")),
                       envelope("user-a", 1, users.UserCreated(email="a@x.io", name="A"))],
                      topic=TOPIC)


def dead_letter(record: SourceRecord) -> DlqEntry:
    return DlqEntry(0, 0, record.key, record.value, record.headers,
                    (record.topic, record.partition, record.offset), "user-a")


def test_retry_applies_the_stream_in_version_order_then_is_a_no_op() -> None:
    poison, *parked = records()
    store = FakeOperableStore({"user-a": (TOPIC, poison.partition, poison.offset)}, parked)
    entry = dead_letter(poison)
    first = asyncio.run(retry_projector(store, entry))
    assert first.result == "released user-a: 3 event(s) re-applied"
    assert store.released == [[1, 2, 3]]
    second = asyncio.run(retry_projector(store, entry))
    assert "nothing to do" in second.result
    assert store.released == [[1, 2, 3]]


def test_an_unfixed_cause_is_still_poison_and_changes_nothing() -> None:
    poison, *parked = records()
    blocked = {"user-a": (TOPIC, poison.partition, poison.offset)}
    store = FakeOperableStore(blocked, parked, refuse=True)
    outcome = asyncio.run(retry_projector(store, dead_letter(poison)))
    assert outcome.result.startswith("still poison")
    assert asyncio.run(store.blocked()) == blocked
    garbage = SourceRecord(TOPIC, poison.partition, poison.offset, poison.key, b"{oops")
    outcome = asyncio.run(retry_projector(FakeOperableStore(blocked, []), dead_letter(garbage)))
    assert outcome.result.startswith("still poison")


def test_a_dead_letter_that_no_longer_blocks_its_stream_is_left_alone() -> None:
    poison, *_ = records()
    store = FakeOperableStore({"user-a": (TOPIC, 0, 999)}, [])
    outcome = asyncio.run(retry_projector(store, dead_letter(poison)))
    assert "nothing to do" in outcome.result
    assert store.released == []
