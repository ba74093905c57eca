"""The fake store: the same outcome buckets and 409 semantics as the Elasticsearch store."""

from __future__ import annotations

import asyncio

from pipeline.domain import users
from projections.search.fake import FakeUserStore
from tests.unit.test_search_documents import CREATED, envelope

RENAMED = envelope("user-u1", 2, users.UserNameChanged(name="Ada L"))


def test_same_batch_twice_leaves_the_same_documents() -> None:
    store = FakeUserStore()
    first = asyncio.run(store.apply_batch([CREATED, RENAMED]))
    snapshot = dict(store.documents)
    second = asyncio.run(store.apply_batch([CREATED, RENAMED]))
    assert (first.applied, first.already_applied) == (2, 0)
    assert (second.applied, second.already_applied) == (0, 2)
    assert store.documents == snapshot


def test_stale_write_is_a_conflict_counted_as_already_applied() -> None:
    store = FakeUserStore()
    asyncio.run(store.apply_batch([CREATED, RENAMED]))
    newer = store.documents["u1"]
    # Another writer folded from a read taken before version 2 landed: it writes version 1.
    outcome = asyncio.run(FakeUserStore.apply_batch(_StaleRead(store), [CREATED]))
    assert (outcome.applied, outcome.already_applied) == (0, 1)
    assert store.documents["u1"] == newer


class _StaleRead(FakeUserStore):
    """A fake whose reads see nothing (as if read before a concurrent write landed)."""

    def __init__(self, backing: FakeUserStore) -> None:
        self.documents = backing.documents

    async def get_documents(self, ids):  # type: ignore[no-untyped-def]
        return dict.fromkeys(ids)
