"""The one place projectors are registered: name → factory of its Faust app (no autodiscovery).

A factory takes the entry point's `Settings` (read once) and returns a `ProjectorApp`; importing
this module builds nothing. Factories import their projector lazily, so `cqrs project postgres`
never imports Elasticsearch code and the reverse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cqrs.settings import Settings
from projections.runtime import ProjectorApp

ProjectorFactory = Callable[[Settings], ProjectorApp]


def _postgres(settings: Settings) -> ProjectorApp:
    from projections.postgres.app import make_app

    return make_app(settings)


def _search(settings: Settings) -> ProjectorApp:
    from projections.search.app import make_app  # type: ignore[import-not-found,unused-ignore]

    app: ProjectorApp = make_app(settings)
    return app


PROJECTORS: Mapping[str, ProjectorFactory] = {
    "postgres": _postgres,
    # Filled by the search projector (projections/search/app.py: `make_app(settings)`).
    "search": _search,
}


def projector_factory(name: str) -> ProjectorFactory:
    """The factory registered as `name`; raises `KeyError` naming the known ones."""
    try:
        return PROJECTORS[name]
    except KeyError:
        raise KeyError(f"no projector {name!r}; known: {', '.join(sorted(PROJECTORS))}") from None
