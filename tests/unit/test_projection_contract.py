"""The store contracts against the fakes: `FakeStore` (PostgreSQL), `FakeSearchStore` (search)."""

from __future__ import annotations

import pytest

from projections.postgres.fake import FakeStore
from projections.search.fake import FakeSearchStore
from tests.unit.projection_contract import PostgresStoreContract, SearchStoreContract


class TestFakeStore(PostgresStoreContract):
    @pytest.fixture
    def store(self) -> FakeStore:
        return FakeStore()


class TestFakeSearchStore(SearchStoreContract):
    @pytest.fixture
    def store(self) -> FakeSearchStore:
        return FakeSearchStore()
