"""`cqrs services up|down|status|env`: the native Kafka, Elasticsearch and PostgreSQL (and,
`--with-metrics`, Prometheus)."""

from __future__ import annotations

import dataclasses
import shlex
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cqrs.cli.boot import bootstrap
from cqrs.services import Layout, Runner, ServiceError
from cqrs.services.layout import MAX_KAFKA_NODES

app = typer.Typer(help="Run Kafka, Elasticsearch and PostgreSQL natively (no Docker needed).")
console = Console(stderr=True, soft_wrap=True)

Names = Annotated[
    list[str] | None,
    typer.Argument(help="Services to act on (kafka, elasticsearch, postgres, prometheus); "
                        "default the first three, and prometheus with --with-metrics."),
]
WithMetrics = Annotated[
    bool,
    typer.Option("--with-metrics", help="Include Prometheus (127.0.0.1:9090, scraping the "
                 "pipeline's processes; CQRS_SERVICES_PROMETHEUS_PORT moves it)."),
]

KafkaNodes = Annotated[
    int | None,
    typer.Option("--kafka-nodes", min=1, max=MAX_KAFKA_NODES,
                 help="Run Kafka as this many KRaft nodes (broker and controller each; node n on "
                      "ports 9092+2(n-1) and 9093+2(n-1)). Default: CQRS_SERVICES_KAFKA_NODES, "
                      "else what the last `up` ran in this state directory, else 1. "
                      "status, down and env follow the recorded count."),
]
Secure = Annotated[
    bool | None,
    typer.Option("--secure/--plaintext",
                 help="Run them with authentication and TLS: Kafka SASL_SSL (SCRAM-SHA-512) with "
                      "ACLs, PostgreSQL over TLS with a role per task, Elasticsearch with security "
                      "and a user per search role, certificates from a local CA "
                      "(docs/security.md). Default: CQRS_SERVICES_SECURE, else what the last `up` "
                      "ran in this state directory, else plaintext."),
]


def _runner(ctx: typer.Context, names: list[str] | None, with_metrics: bool = False,
            kafka_nodes: int | None = None, secure: bool | None = None) -> Runner:
    """The runner of `names`; Prometheus scrapes the processes at the settings' metrics ports."""
    try:
        layout = Layout.from_env(metrics_ports=bootstrap(ctx, None).settings.metrics_ports())
        if kafka_nodes is not None:
            layout = dataclasses.replace(layout, kafka_nodes=kafka_nodes)
        if secure is not None:
            layout = dataclasses.replace(layout, secure=secure)
        return Runner(layout, names, with_metrics=with_metrics)
    except (ValueError, ServiceError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error


def _say(message: str) -> None:
    console.print(message, highlight=False, markup=False)


@app.command()
def up(ctx: typer.Context, names: Names = None, with_metrics: WithMetrics = False,
       kafka_nodes: KafkaNodes = None, secure: Secure = None) -> None:
    """Fetch (once, cached), start and health-check the services. Idempotent."""
    runner = _runner(ctx, names, with_metrics, kafka_nodes, secure)
    started = time.monotonic()
    try:
        runner.up(_say)
    except ServiceError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(1) from error
    console.print(f"[green]services ready[/green] in {time.monotonic() - started:.1f}s")
    console.print('point clients at them with: eval "$(cqrs services env)"')


@app.command()
def down(ctx: typer.Context, names: Names = None, with_metrics: WithMetrics = False) -> None:
    """Stop exactly the processes `up` started, and check that they are gone (without names:
    the default services, and Prometheus whenever it runs)."""
    running = bool(_runner(ctx, names).running_metrics_services())
    if not _runner(ctx, names, with_metrics or running).down(_say):
        raise typer.Exit(1)


@app.command()
def status(
    ctx: typer.Context, names: Names = None, with_metrics: WithMetrics = False
) -> None:
    """Show each service's pid, health, memory and log file. Exit 1 if any is not ready."""
    table = Table("service", "pid", "state", "rss", "endpoint", "log")
    statuses = _runner(ctx, names, with_metrics).status()
    for item in statuses:
        state = "[green]ready[/green]" if item.ready else (
            "[yellow]starting[/yellow]" if item.pid else "[red]stopped[/red]")
        table.add_row(item.name, str(item.pid or "-"), state, f"{item.rss_mib:.0f} MiB",
                      item.endpoint, str(item.log_file))
    Console().print(table)
    if not all(item.ready for item in statuses):
        raise typer.Exit(1)


@app.command()
def env() -> None:
    """Print shell exports that point the project and its tests at the native services: every
    Kafka node's address, and the replication the catalogue should ask of them. For secure
    services: the CA and the directory of the roles' credentials files, never a secret."""
    for key, value in Layout.from_env().client_env().items():
        print(f"unset {key}" if value is None else f"export {key}={shlex.quote(value)}")
