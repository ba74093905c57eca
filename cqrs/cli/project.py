"""`cqrs project <name>`: run one registered projector as a Faust worker until stopped."""

from __future__ import annotations

from collections.abc import Callable

import typer

from cqrs.settings import Settings
from projections.registry import PROJECTORS, projector_factory

app = typer.Typer(
    help="Run a projector (its own consumer group and DLQ) until stopped (Ctrl-C, SIGTERM).",
    no_args_is_help=True,
)


def run_projector(name: str, loglevel: str = "info") -> None:
    """Build projector `name` from settings read once, and run its worker (blocks)."""
    import faust

    settings = Settings()
    projector_app = projector_factory(name)(settings)
    worker = faust.Worker(projector_app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()


def _command(name: str) -> Callable[[str], None]:
    def command(
        loglevel: str = typer.Option("info", help="debug, info, warning or error."),
    ) -> None:
        run_projector(name, loglevel)

    command.__doc__ = f"Run the {name} projector (exits non-zero on an unexpected error)."
    return command


for _name in PROJECTORS:
    app.command(_name)(_command(_name))
