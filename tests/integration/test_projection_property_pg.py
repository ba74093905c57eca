"""The projection property against the real PostgreSQL: duplicates, and any interleaving that keeps
each stream's order, in any batch size, leave the same rows as every event applied once, in order.

The strategies and histories are the unit property's (`tests.unit.test_projection_processor`);
here `PostgresStore` replaces the fake. A fresh database per test, a fresh schema per example.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo

from projections.postgres.store import PostgresStore
from projections.queries import OrdersForUser, orders_for_user
from projections.runtime import BatchProcessor
from tests.integration.projector_harness import fresh_database
from tests.support.events import T0, as_records
from tests.support.services import Endpoints
from tests.unit.test_projection_processor import (
    USER_NAMES,
    ListDeadLetters,
    histories,
    interleavings,
)

NOW = T0 + timedelta(days=2)
TABLES = {
    "users": "SELECT * FROM users ORDER BY id",
    "orders": "SELECT * FROM orders ORDER BY id",
    "user_order_totals": "SELECT * FROM user_order_totals ORDER BY customer_id, currency",
}


async def _no_sleep(delay: float) -> None:
    return None


@pytest.fixture(scope="module")
def database(endpoints: Endpoints) -> Iterator[str]:
    """A fresh database for this module's test (hypothesis needs a fixture wider than one
    example; each example gets its own schema in it)."""
    with fresh_database(endpoints.pg_dsn) as (_, dsn):
        yield dsn


def fresh_schema(dsn: str) -> str:
    """A new, empty schema; the DSN returned puts it first on `search_path` (migrations too)."""
    name = f"ex_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"'.encode())
    return make_conninfo(dsn, options=f"-csearch_path={name}")


async def project(dsn: str, chunks: list[list[Any]]) -> dict[str, Any]:
    """Run every chunk through a `BatchProcessor` over a new `PostgresStore` (one transaction per
    chunk), then read the whole read model back."""
    store = PostgresStore(dsn)
    dlq = ListDeadLetters()
    processor = BatchProcessor("postgres", store, dlq, sleep=_no_sleep)
    try:
        await processor.start()
        for chunk in chunks:
            await processor.process(chunk)
        counters = processor.counters
        assert not dlq.sent
        assert counters.consumed == counters.applied + counters.skipped
        return await read_model(store, dsn)
    finally:
        await store.close()


async def read_model(store: PostgresStore, dsn: str) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(dsn) as connection:
        found: dict[str, Any] = {}
        for name, query in TABLES.items():
            cursor = await connection.execute(query.encode())
            found[name] = await cursor.fetchall()
    found["stats"] = await store.user_stats(NOW)
    found["orders_per_user"] = [
        await orders_for_user(store, OrdersForUser(user_id=user_id)) for user_id in USER_NAMES]
    return found


@pytest.fixture(scope="module")
def reference(database: str) -> dict[str, Any]:
    """The read model of every event applied once, in order, in one batch."""
    records = as_records([event for history in histories() for event in history])
    expected = asyncio.run(project(fresh_schema(database), [records]))
    assert len(expected["users"]) == len(USER_NAMES)
    assert len(expected["orders"]) == 3
    return expected


@settings(max_examples=15, deadline=None)
@given(data=st.data(), size=st.integers(1, 7))
def test_duplicates_and_interleavings_give_the_same_rows_in_postgres(
    database: str, reference: dict[str, Any], data: Any, size: int
) -> None:
    records = as_records(interleavings(data.draw, histories()))
    chunks = [records[start:start + size] for start in range(0, len(records), size)]
    assert asyncio.run(project(fresh_schema(database), chunks)) == reference
