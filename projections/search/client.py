"""The one way the project opens Elasticsearch: `make_client`."""

from __future__ import annotations

from elasticsearch import AsyncElasticsearch, OrjsonSerializer

from projections.config import SearchConfig


def make_client(search: SearchConfig, request_timeout: float = 30) -> AsyncElasticsearch:
    """An async client for `search.url` (with `search.api_key` when set), writing and reading
    JSON with orjson (the client's stdlib serializer took about a tenth of the search
    projector's time: its bulk bodies and mget answers)."""
    return AsyncElasticsearch(search.url, api_key=search.api_key,
                              request_timeout=request_timeout, serializer=OrjsonSerializer())
