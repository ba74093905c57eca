"""Test helpers for the real Elasticsearch: fresh index names, and async work on a client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from elasticsearch import AsyncElasticsearch

from projections.search.index import IndexNames, drop_indices

T = TypeVar("T")


def run_with(es_url: str, work: Callable[[AsyncElasticsearch], Awaitable[T]]) -> T:
    """`work(client)` on a client of `es_url`, closed afterwards."""
    async def main() -> T:
        async with AsyncElasticsearch(es_url) as client:
            return await work(client)

    return asyncio.run(main())


@contextmanager
def fresh_names(es_url: str, head: str = "test") -> Iterator[IndexNames]:
    """Index names under a new `<head>-<random>.` prefix; their indices dropped afterwards."""
    names = IndexNames.for_prefix(f"{head}-{uuid.uuid4().hex[:8]}.")
    try:
        yield names
    finally:
        run_with(es_url, lambda client: drop_indices(client, names))
