"""`cqrs project <name>`: run one registered projector as a Faust worker until stopped."""

from __future__ import annotations

from collections.abc import Callable

import typer

from cqrs.bootstrap import Bootstrap
from cqrs.cli.boot import bootstrap
from projections.registry import PROJECTORS
from projections.runtime import run_worker

app = typer.Typer(
    help="Run a projector (its own consumer group and DLQ) until stopped (Ctrl-C, SIGTERM).",
    no_args_is_help=True,
)


def run_projector(boot: Bootstrap, name: str, loglevel: str = "info") -> None:
    """Build projector `name` from the bootstrap's config, and run its worker (blocks)."""
    run_worker(boot.projector_app(name), loglevel)


def _command(name: str) -> Callable[[typer.Context, str], None]:
    def command(
        ctx: typer.Context,
        loglevel: str = typer.Option("info", help="debug, info, warning or error."),
    ) -> None:
        run_projector(bootstrap(ctx), name, loglevel)

    command.__doc__ = f"Run the {name} projector (exits non-zero on an unexpected error)."
    return command


for _name in PROJECTORS:
    app.command(_name)(_command(_name))
