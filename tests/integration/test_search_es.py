"""The search index against the real Elasticsearch: alias, ranking, safety (writes, external
versions and idempotence: `test_search_store_contract`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from elasticsearch import AsyncElasticsearch

from projections.search.index import IndexNames, alias_target, ensure_index
from projections.search.query import UserSearch
from projections.search.store import ElasticsearchUserStore
from projections.search.writes import apply_documents
from tests.support.search import fresh_names, run_with
from tests.unit.test_search_documents import envelope
from topics import UserCreated, UserDeactivated


@pytest.fixture
def names(es_url: str) -> Iterator[IndexNames]:
    with fresh_names(es_url, "Test") as found:
        yield found


PEOPLE = [
    envelope("user-u1", 1, UserCreated(email="alice@example.com", name="Alice")),
    envelope("user-u2", 1, UserCreated(email="alicia.keys@music.org", name="Alicia Keys")),
    envelope("user-u3", 1, UserCreated(email="bob@example.com", name="Bob Alison")),
    envelope("user-u4", 1, UserCreated(email="a.smith@corp.io", name="Alice Smith")),
    envelope("user-u3", 2, UserDeactivated()),
]


def test_alias_and_index_creation_is_idempotent(es_url: str, names: IndexNames) -> None:
    async def work(client: AsyncElasticsearch) -> tuple[str, str, str | None]:
        first, second = await asyncio.gather(
            ensure_index(client, names), ensure_index(client, names)
        )
        return first, second, await alias_target(client, names)

    first, second, target = run_with(es_url, work)
    assert first == second == target == names.versioned(1)


@pytest.fixture
def search(es_url: str, names: IndexNames) -> Callable[..., list[str]]:
    async def load(client: AsyncElasticsearch) -> None:
        await ensure_index(client, names)
        await apply_documents(ElasticsearchUserStore(client, names.alias, refresh="wait_for"),
                              PEOPLE)

    run_with(es_url, load)

    def query(text: str, **options: object) -> list[str]:
        async def work(client: AsyncElasticsearch) -> list[str]:
            result = await UserSearch(client, names.alias).search_users(text, **options)  # type: ignore[arg-type]
            assert result.total >= len(result.hits)
            return [hit.id for hit in result.hits]

        return run_with(es_url, work)

    return query


def test_prefix_typo_and_email_fragment_find_alice(search: Callable[..., list[str]]) -> None:
    assert {"u1", "u2", "u4"} <= set(search("ali"))
    assert search("alcie")[0] == "u1"
    assert search("alise")[0] == "u1"
    assert set(search("example")) == {"u1", "u3"}
    assert search("keys@music") == ["u2"]
    assert "u4" in search("smith@corp")


def test_exact_name_ranks_first(search: Callable[..., list[str]]) -> None:
    hits = search("alice")
    assert hits[0] == "u1"
    assert "u4" in hits
    assert search("Alice Smith")[0] == "u4"


def test_query_syntax_is_just_text(search: Callable[..., list[str]]) -> None:
    for text in ["name:* OR (", 'alice" AND ~2 /.*/ \\', "email:bob@example.com", "*", ")("]:
        search(text)  # no error
    assert "u3" not in search("name:* OR (")


def test_deactivated_users_are_shown_unless_active_only(search: Callable[..., list[str]]) -> None:
    assert "u3" in search("bob")
    assert "u3" not in search("bob", active_only=True)
