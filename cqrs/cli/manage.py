"""`cqrs manage`: run the process managers (one Faust worker, docs/process-managers.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from cqrs import metrics_ports
from cqrs.cli.boot import bootstrap, configure_logging
from observability import served
from projections.managers.app import make_manager_app
from projections.runtime import run_worker


def manage(
    ctx: typer.Context,
    loglevel: Annotated[str | None, typer.Option(
        "--log-level", "--loglevel",
        help="debug, info, warning or error (default: `cqrs --log-level`, else info).")] = None,
    metrics_port: Annotated[int, typer.Option(
        "--metrics-port", min=0, max=65535, envvar="CQRS_MANAGERS_METRICS_PORT",
        help="Serve /metrics, /livez, /readyz here (0: not served).")] = metrics_ports.MANAGERS,
) -> None:
    """Run the process managers until stopped: cancel the open orders of customers deactivated
    or forgotten, and orders accepted for a customer already inactive (exits non-zero on an
    unexpected error; a restart resumes from the group's offsets and the tables' changelogs)."""
    log_config = configure_logging(ctx, loglevel)
    config = bootstrap(ctx, "managers").config
    wanted = [config.catalogue.events, config.catalogue.commands,
              *config.catalogue.manager_specs()]
    try:
        existing = AdminClient(dict(config.kafka.client_config())).list_topics(timeout=15).topics
    except Exception as error:
        typer.echo(f"error: Kafka unreachable: {error}", err=True)
        raise typer.Exit(1) from error
    missing = [spec.name for spec in wanted if spec.name not in existing]
    if missing:
        typer.echo(f"error: topics missing: {', '.join(missing)} (run `cqrs topics apply`)",
                   err=True)
        raise typer.Exit(1)
    # The facts topic and the tables' changelogs are partitioned like the events topic (a
    # customer's state lives on its murmur2 partition); any other count would make Faust
    # refuse the first table write, on every restart.
    events = len(existing[config.catalogue.events.name].partitions)
    unlike = {spec.name: len(existing[spec.name].partitions)
              for spec in config.catalogue.manager_specs()
              if len(existing[spec.name].partitions) != events}
    if unlike:
        shown = ", ".join(f"{name} has {count}" for name, count in sorted(unlike.items()))
        typer.echo(f"error: the managers' topics must have the events topic's {events} "
                   f"partitions: {shown}. Recreate them with that count, and move the "
                   "managers' group to the beginning of the events topic so their state is "
                   "made again (docs/process-managers.md)", err=True)
        raise typer.Exit(1)
    registry = CollectorRegistry()
    app = make_manager_app(config.kafka, config.catalogue, registry=registry)
    with served(metrics_port, registry, app.health,
                hint="another --metrics-port for cqrs manage, 0 disables"):
        run_worker(app, log_config["root"]["level"].lower(), log_config)
