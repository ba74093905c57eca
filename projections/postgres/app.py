"""Composition root of the postgres projector: settings → store → Faust app."""

from __future__ import annotations

from cqrs.settings import Settings
from projections.postgres.store import PostgresStore
from projections.runtime import ProjectorApp, make_projector_app

NAME = "postgres"


def make_app(settings: Settings) -> ProjectorApp:
    """The postgres projector's Faust app (consumer group `<prefix>projector.postgres`)."""
    return make_projector_app(NAME, settings, PostgresStore(settings.pg_dsn, projector=NAME))
