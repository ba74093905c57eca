"""The one way the project opens Elasticsearch: `make_client`."""

from __future__ import annotations

from elasticsearch import AsyncElasticsearch, OrjsonSerializer

from projections.config import SearchConfig


def make_client(search: SearchConfig, request_timeout: float = 30) -> AsyncElasticsearch:
    """An async client for `search.url` (with `search.api_key` when set), writing and reading
    JSON with orjson: query bodies and every answer (the bulk bodies are NDJSON lines the
    project writes itself). The stdlib serializer's share of the search projector's samples was
    about a tenth, mostly reading the `mget` and bulk answers."""
    return AsyncElasticsearch(search.url, api_key=search.api_key,
                              request_timeout=request_timeout, serializer=OrjsonSerializer())
