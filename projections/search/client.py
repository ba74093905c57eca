"""The one way the project opens Elasticsearch: `make_client` (and `make_sync_client`)."""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch, Elasticsearch, OrjsonSerializer

from projections.config import SearchConfig


def connection_options(search: SearchConfig) -> dict[str, Any]:
    """How to reach and authenticate to `search.url`: its API key when set, else its user and
    password (basic auth) when set; an `https://` URL's certificate is always verified, against
    `search.ca_certs` when set (else the system's CAs); an `http://` URL ignores the CA."""
    basic_auth = None
    if search.api_key is None and search.username is not None:
        basic_auth = (search.username, search.password or "")
    https = search.url.lower().startswith("https://")
    return {"hosts": search.url, "api_key": search.api_key, "basic_auth": basic_auth,
            "ca_certs": search.ca_certs if https else None, "verify_certs": True}


def make_client(search: SearchConfig, request_timeout: float = 30) -> AsyncElasticsearch:
    """An async client (`connection_options`) writing and reading JSON with orjson: query
    bodies and every answer (the bulk bodies are NDJSON lines the project writes itself). The
    stdlib serializer's share of the search projector's samples was about a tenth, mostly
    reading the `mget` and bulk answers."""
    return AsyncElasticsearch(**connection_options(search), request_timeout=request_timeout,
                              serializer=OrjsonSerializer())


def make_sync_client(search: SearchConfig, request_timeout: float = 30) -> Elasticsearch:
    """A blocking client (`connection_options`), for scripts and the bench's set-up."""
    return Elasticsearch(**connection_options(search), request_timeout=request_timeout)
