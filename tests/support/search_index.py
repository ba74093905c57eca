"""Every document of a prefix's search alias, read with a raw Elasticsearch client (the
accounting of `tests.support.accounting` compares them with the search projector's fold)."""

from __future__ import annotations

import asyncio

from elasticsearch import AsyncElasticsearch, Elasticsearch, NotFoundError

from projections.search.documents import UserDocument
from projections.search.index import IndexNames, drop_indices

PAGE = 10_000


def indexed_documents(es_url: str, topic_prefix: str) -> dict[str, UserDocument]:
    """The documents of the alias by user id, as a search sees them (refreshed first); none
    while the projector has not made the index yet. At most `PAGE` documents."""
    alias = IndexNames.for_prefix(topic_prefix).alias
    with Elasticsearch(es_url) as client:
        try:
            client.indices.refresh(index=alias)
            found = client.search(index=alias, size=PAGE, query={"match_all": {}})
        except NotFoundError:
            return {}
    hits = found.body["hits"]["hits"]
    assert len(hits) < PAGE, "more documents than one page reads"
    return {hit["_id"]: UserDocument.model_validate(hit["_source"]) for hit in hits}


def drop_search_indices(es_url: str, topic_prefix: str) -> None:
    """Every index of the prefix's search alias (a test's clean-up)."""

    async def drop() -> None:
        async with AsyncElasticsearch(es_url) as client:
            await drop_indices(client, IndexNames.for_prefix(topic_prefix))

    asyncio.run(drop())
