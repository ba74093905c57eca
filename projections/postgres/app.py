"""Composition root of the postgres projector: config → store → Faust app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from projections.config import ProjectionsConfig
from projections.postgres.store import PostgresStore
from projections.runtime import ProjectorApp, make_projector_app

NAME = "postgres"


def make_app(config: ProjectionsConfig,
             registry: CollectorRegistry | None = None) -> ProjectorApp:
    """The postgres projector's Faust app (consumer group `<prefix>projector.postgres`), its
    metrics on `registry`."""
    store = PostgresStore.live(config.postgres, projector=NAME)
    return make_projector_app(NAME, config.kafka, config.catalogue, store, registry=registry)
