"""The one place projectors are registered: name → factory of its Faust app (no autodiscovery).

A factory takes the entry point's `ProjectionsConfig` (built once from its settings by the
composition root, `cqrs.bootstrap`) and the Prometheus registry its metrics go on (`None`: one of
their own), and returns a `ProjectorApp`; importing
this module builds nothing. Factories import their projector lazily, so `cqrs project postgres`
never imports Elasticsearch code and the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry

from projections.config import ProjectionsConfig
from projections.runtime import ProjectorApp


class ProjectorFactory(Protocol):
    def __call__(self, config: ProjectionsConfig,
                 registry: CollectorRegistry | None = None) -> ProjectorApp: ...


def _postgres(config: ProjectionsConfig,
              registry: CollectorRegistry | None = None) -> ProjectorApp:
    from projections.postgres.app import make_app

    return make_app(config, registry)


def _search(config: ProjectionsConfig,
            registry: CollectorRegistry | None = None) -> ProjectorApp:
    from projections.search.app import make_app

    return make_app(config, registry)


PROJECTORS: Mapping[str, ProjectorFactory] = {
    "postgres": _postgres,
    "search": _search,
}


def projector_factory(name: str) -> ProjectorFactory:
    """The factory registered as `name`; raises `KeyError` naming the known ones."""
    try:
        return PROJECTORS[name]
    except KeyError:
        raise KeyError(f"no projector {name!r}; known: {', '.join(sorted(PROJECTORS))}") from None
