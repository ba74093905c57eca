"""The store contract against the real PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from projections.postgres.store import PostgresStore
from tests.integration.projector_harness import fresh_database
from tests.unit.projection_contract import PostgresStoreContract


class TestPostgresStore(PostgresStoreContract):
    @pytest.fixture
    def store(self, pg_dsn: str, runner: asyncio.Runner) -> Iterator[PostgresStore]:
        with fresh_database(pg_dsn) as (_, dsn):
            store = PostgresStore(dsn)
            runner.run(store.start())
            runner.run(store.start())  # migrations are idempotent
            yield store
            runner.run(store.close())
