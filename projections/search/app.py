"""The search projector's composition root: settings → client, store, Faust app."""

from __future__ import annotations

from elasticsearch import AsyncElasticsearch

from cqrs.settings import Settings
from projections.runtime import ProjectorApp, make_projector_app
from projections.search.index import IndexNames
from projections.search.projector import SearchProjectorStore

NAME = "search"


def make_client(settings: Settings) -> AsyncElasticsearch:
    """An async client for `settings.es_url` (with `es_api_key` when set)."""
    return AsyncElasticsearch(settings.es_url, api_key=settings.es_api_key, request_timeout=30)


def make_app(settings: Settings) -> ProjectorApp:
    """`cqrs project search`: the users search projector as its own Faust app."""
    store = SearchProjectorStore(
        make_client(settings), IndexNames.for_prefix(settings.topic_prefix)
    )
    return make_projector_app(NAME, settings, store)
