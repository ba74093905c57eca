"""The store contracts against the fakes: `FakeStore` (PostgreSQL), `FakeSearchStore` (search)."""

from __future__ import annotations

import asyncio

import pytest

from projections.postgres.fake import FakeStore
from projections.search.documents import UserDocument
from projections.search.errors import SearchUnavailable
from projections.search.fake import FakeSearchStore
from tests.support.events import stream
from tests.unit.projection_contract import PostgresStoreContract, SearchStoreContract, batch
from topics import UserCreated, UserForgotten


class TestFakeStore(PostgresStoreContract):
    @pytest.fixture
    def store(self) -> FakeStore:
        return FakeStore()


class TestFakeSearchStore(SearchStoreContract):
    @pytest.fixture
    def store(self) -> FakeSearchStore:
        return FakeSearchStore()

    async def leave_document(self, store: FakeSearchStore, document: UserDocument) -> None:
        store.documents.stored[document.user_id] = document


def test_a_forget_whose_delete_failed_deletes_when_retried() -> None:
    """The deletes go first, the markers only once they are done: a forget whose delete failed
    transiently leaves no marker, so the retried batch applies it again."""
    store = FakeSearchStore()
    history = stream("user-d1", [UserCreated(email="d1@x.io", name="D"),
                                 UserForgotten(reason="r", requested_by="dpo")])

    async def scenario() -> None:
        await store.apply(batch(history[:1]))
        store.documents.fail_deletes = 1
        with pytest.raises(SearchUnavailable):
            await store.apply(batch(history[1:]))
        assert store.documents.markers == {}
        assert (await store.apply(batch(history[1:]))).applied == 1
        assert (store.documents.stored, list(store.documents.markers)) == ({}, ["d1"])
    asyncio.run(scenario())
