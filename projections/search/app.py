"""The search projector's composition root: config → client, store, Faust app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from projections.config import ProjectionsConfig
from projections.runtime import ProjectorApp, make_projector_app
from projections.search.client import make_client
from projections.search.index import IndexNames
from projections.search.projector import SearchProjectorStore

NAME = "search"


def make_app(config: ProjectionsConfig,
             registry: CollectorRegistry | None = None) -> ProjectorApp:
    """`cqrs project search`: the users search projector as its own Faust app, its metrics on
    `registry`."""
    store = SearchProjectorStore(make_client(config.search), IndexNames.for_prefix(config.prefix),
                                 refresh_interval=config.search.refresh_interval)
    return make_projector_app(NAME, config.kafka, config.catalogue, store, registry=registry)
