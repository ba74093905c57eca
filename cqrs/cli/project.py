"""`cqrs project <name>`: run one registered projector as a Faust worker until stopped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from prometheus_client import CollectorRegistry

from cqrs.bootstrap import Bootstrap
from cqrs.cli.boot import bootstrap, configure_logging
from cqrs.services.credentials import Role
from observability import served
from pipeline.processor import heap
from projections.registry import PROJECTORS
from projections.runtime import run_worker
from projections.runtime.health import ProjectorHealth

app = typer.Typer(
    help="Run a projector (its own consumer group and DLQ) until stopped (Ctrl-C, SIGTERM).",
    no_args_is_help=True,
)


def run_projector(boot: Bootstrap, name: str, loglevel: str = "info",
                  log_config: dict[str, Any] | None = None,
                  metrics_port: int | None = None) -> None:
    """Build projector `name` from the bootstrap's config, and run its worker (blocks); the
    worker installs `log_config` (`cqrs.logs.logging_config`) when given. `/metrics`, `/livez`
    and `/readyz` are served on `metrics_port` (default: the config's port of `name`; 0: not
    served)."""
    registry = CollectorRegistry()
    projector = boot.projector_app(name, registry)
    if metrics_port is None:
        metrics_port = boot.config.projector_metrics_ports.get(name, 0)
    # A port that cannot be bound is logged and the projector projects all the same.
    with served(metrics_port, registry, projector.health or ProjectorHealth(),
                hint=f"another --metrics-port for projector {name}, 0 disables"):
        # A projector makes a few short-lived objects per record over a long-lived Faust heap:
        # the same collector settings as the processor's (`heap`), once start-up is done.
        heap.tune(heap.YOUNG_THRESHOLD)
        heap.settle()
        run_worker(projector, loglevel, log_config)


def _command(name: str) -> Callable[[typer.Context, str | None, int | None], None]:
    def command(
        ctx: typer.Context,
        loglevel: str | None = typer.Option(
            None, "--log-level", "--loglevel",
            help="debug, info, warning or error (default: `cqrs --log-level`, else info); "
            "debug logs one line per applied event."),
        metrics_port: int | None = typer.Option(
            None, "--metrics-port", min=0, max=65535,
            help=f"Serve /metrics, /livez, /readyz here (default: "
            f"CQRS_PROJECTOR_{name.upper()}_METRICS_PORT; 0: not served)."),
    ) -> None:
        log_config = configure_logging(ctx, loglevel)
        role: Role = "projector-postgres" if name == "postgres" else "projector-search"
        run_projector(bootstrap(ctx, role), name, log_config["root"]["level"].lower(), log_config,
                      metrics_port)

    command.__doc__ = f"Run the {name} projector (exits non-zero on an unexpected error)."
    return command


for _name in PROJECTORS:
    app.command(_name)(_command(_name))
