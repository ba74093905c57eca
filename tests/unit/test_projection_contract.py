"""The store contract against the in-memory `FakeStore`."""

from __future__ import annotations

import pytest

from projections.postgres.fake import FakeStore
from tests.unit.projection_contract import StoreContract


class TestFakeStore(StoreContract):
    @pytest.fixture
    def store(self) -> FakeStore:
        return FakeStore()
