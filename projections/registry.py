"""The one place projectors are registered: name → factory of its Faust app (no autodiscovery).

A factory takes the entry point's `ProjectionsConfig` (built once from its settings by the
composition root, `cqrs.bootstrap`) and returns a `ProjectorApp`; importing
this module builds nothing. Factories import their projector lazily, so `cqrs project postgres`
never imports Elasticsearch code and the reverse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from projections.config import ProjectionsConfig
from projections.runtime import ProjectorApp

ProjectorFactory = Callable[[ProjectionsConfig], ProjectorApp]


def _postgres(config: ProjectionsConfig) -> ProjectorApp:
    from projections.postgres.app import make_app

    return make_app(config)


def _search(config: ProjectionsConfig) -> ProjectorApp:
    from projections.search.app import make_app

    return make_app(config)


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
