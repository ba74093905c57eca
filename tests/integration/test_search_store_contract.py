"""The search store contract against the real Elasticsearch (fresh index names per test)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import AsyncElasticsearch

from projections.search.documents import UserDocument
from projections.search.index import IndexNames, drop_indices
from projections.search.projector import SearchProjectorStore
from tests.unit.projection_contract import SearchStoreContract


class TestSearchProjectorStore(SearchStoreContract):
    @pytest.fixture
    def store(self, es_url: str, runner: asyncio.Runner) -> Iterator[SearchProjectorStore]:
        names = IndexNames.for_prefix(f"contract-{uuid.uuid4().hex[:8]}.")
        client = AsyncElasticsearch(es_url)
        store = SearchProjectorStore(client, names, refresh="wait_for")
        self.client = client
        runner.run(store.start())
        yield store
        runner.run(drop_indices(client, names))
        runner.run(store.close())

    async def leave_document(self, store: SearchProjectorStore, document: UserDocument) -> None:
        """Indexed in the store's index directly (internal versioning: past any delete)."""
        await self.client.index(index=store.documents.index, id=document.user_id,
                                 document=document.model_dump(mode="json",
                                                              exclude={"forgotten", "lingering"}),
                                 refresh="wait_for")
