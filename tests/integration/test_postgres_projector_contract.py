"""The store contract against the real PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from projections.postgres.store import PostgresStore
from tests.integration.projector_harness import fresh_database
from tests.unit.projection_contract import StoreContract


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, pg_dsn: str) -> Iterator[PostgresStore]:
        with fresh_database(pg_dsn) as (_, dsn):
            store = PostgresStore(dsn)
            asyncio.run(store.start())
            asyncio.run(store.start())  # migrations are idempotent
            yield store
            asyncio.run(store.close())
