"""The search projector's composition root: config → client, store, Faust app."""

from __future__ import annotations

from elasticsearch import AsyncElasticsearch
from prometheus_client import CollectorRegistry

from projections.config import ProjectionsConfig, SearchConfig
from projections.runtime import ProjectorApp, make_projector_app
from projections.search.index import IndexNames
from projections.search.projector import SearchProjectorStore

NAME = "search"


def make_client(search: SearchConfig, request_timeout: float = 30) -> AsyncElasticsearch:
    """An async client for `search.url` (with `search.api_key` when set)."""
    return AsyncElasticsearch(search.url, api_key=search.api_key,
                              request_timeout=request_timeout)


def make_app(config: ProjectionsConfig,
             registry: CollectorRegistry | None = None) -> ProjectorApp:
    """`cqrs project search`: the users search projector as its own Faust app, its metrics on
    `registry`."""
    store = SearchProjectorStore(make_client(config.search), IndexNames.for_prefix(config.prefix),
                                 refresh_interval=config.search.refresh_interval)
    return make_projector_app(NAME, config.kafka, config.catalogue, store, registry=registry)
