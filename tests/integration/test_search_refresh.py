"""Against the real Elasticsearch: the users index gets the configured refresh interval (at
creation and at a projector's start), and what a batch parks or blocks is found by the next
start without the batch having waited for a refresh (`refresh="wait_for"` is gone)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import AsyncElasticsearch

from projections.runtime.records import Batch, SourceRecord
from projections.search.index import IndexNames, ensure_index
from projections.search.projector import SearchProjectorStore
from tests.support.search import fresh_names, run_with


@pytest.fixture
def names(es_url: str) -> Iterator[IndexNames]:
    with fresh_names(es_url) as found:
        yield found


async def refresh_interval(client: AsyncElasticsearch, index: str) -> str:
    found = await client.indices.get_settings(index=index, name="index.refresh_interval")
    return str(found.body[index]["settings"]["index"]["refresh_interval"])


def test_the_configured_interval_is_set_at_creation_and_at_start(
        es_url: str, names: IndexNames) -> None:
    async def work(client: AsyncElasticsearch) -> list[str]:
        index = await ensure_index(client, names, "250ms")
        seen = [await refresh_interval(client, index)]
        await ensure_index(client, names, "5s")  # a restart with another setting
        seen.append(await refresh_interval(client, index))
        await ensure_index(client, names, "5000ms")  # the same interval: left as it is
        seen.append(await refresh_interval(client, index))
        return seen

    assert run_with(es_url, work) == ["250ms", "5s", "5s"]


def test_a_rebuild_target_index_is_created_with_the_interval(
        es_url: str, names: IndexNames) -> None:
    async def work(client: AsyncElasticsearch) -> str:
        store = SearchProjectorStore(client, names, index=names.versioned(2),
                                     refresh_interval="2s")
        await store.start()
        return await refresh_interval(client, names.versioned(2))

    assert run_with(es_url, work) == "2s"


def test_blocked_and_parked_records_are_found_at_the_next_start_without_a_refresh(
        es_url: str, names: IndexNames) -> None:
    """The state index's periodic refresh is switched off, so only the readers' own refresh can
    make the records of the batch visible."""
    dead = SourceRecord("t.events", 0, 4, b"user-a@2", b"not json")
    later = SourceRecord("t.events", 0, 5, b"user-a@3", b"{}")
    batch = Batch([], parked=[("user-a", later)], blocked=[("user-a", dead)],
                  checkpoints={("t.events", 0): 5})

    async def work(client: AsyncElasticsearch) -> tuple[set[str], list[int], dict[int, int]]:
        writer = SearchProjectorStore(client, names)
        await writer.start()
        await client.indices.put_settings(index=writer.state_index,
                                          settings={"index": {"refresh_interval": "-1"}})
        await writer.apply(batch)
        restarted = SearchProjectorStore(client, names)
        await restarted.start()
        parked = await restarted.parked_streams()
        records = [r.offset for r in await restarted.parked_records("user-a")]
        return parked, records, await restarted.checkpoints("t.events")

    assert run_with(es_url, work) == ({"user-a"}, [5], {0: 5})
