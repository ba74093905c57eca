"""`cqrs topics apply|list`: create the catalogue's topics, report drift, show what the broker has.

Exit codes: 0 all as specified, 1 drift (or a topic the broker refused to create), 2 the broker
is unreachable or the settings are invalid. `apply` never deletes an existing topic, and alters
one only with `--fix-configs` (its drifted configs, never partitions or replication).
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import typer
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cqrs.bootstrap import Bootstrap
from cqrs.cli.boot import bootstrap
from topics import (
    ADMIN_TIMEOUT_S,
    AdminError,
    ApplyReport,
    BrokerUnavailable,
    Catalogue,
    InvalidTopicName,
    TopicState,
    apply,
    describe,
)

app = typer.Typer(help="Create the pipeline's Kafka topics and check them against the catalogue.")
err = Console(stderr=True)


def _connect(boot: Bootstrap) -> tuple[AdminClient, Catalogue]:
    try:
        catalogue = boot.config.catalogue
    except InvalidTopicName as error:
        err.print(f"[red]error:[/red] {escape(str(error))} (setting CQRS_TOPIC_PREFIX)",
                  highlight=False)
        raise typer.Exit(2) from error
    # librdkafka logs every failed connection attempt to stderr; the error we raise says it once.
    quiet = logging.getLogger("cqrs.cli.librdkafka")
    quiet.setLevel(logging.CRITICAL)
    config: dict[str, Any] = {**boot.config.kafka.client_config(), "logger": quiet}
    return AdminClient(config), catalogue


def _fail(error: AdminError, boot: Bootstrap) -> typer.Exit:
    code = 2 if isinstance(error, BrokerUnavailable) else 1
    err.print(f"[red]error:[/red] {escape(str(error))} (bootstrap: {boot.config.kafka.bootstrap})",
              highlight=False)
    return typer.Exit(code)


def _print_report(report: ApplyReport) -> None:
    out = Console(highlight=False)
    verb = "would create" if report.dry_run else "created"
    for name in report.created:
        out.print(f"[green]{verb}[/green] {name}")
    for name in report.unchanged:
        out.print(f"[dim]ok[/dim]      {name}")
    for drift in report.drift:
        out.print(f"[red]drift[/red]   {escape(str(drift))}")
    if report.drift:
        out.print("[red]drift found:[/red] apply never alters existing topics unless asked: "
                  "`cqrs topics apply --fix-configs` sets drifted topic configs to the "
                  "catalogue's; partitions and replication are migrated or recreated by hand")


Timeout = Annotated[float, typer.Option(help="Seconds to wait for the broker.", min=0.1)]


@app.command("apply")
def apply_command(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would change.")]
    = False,
    fix_configs: Annotated[bool, typer.Option(
        "--fix-configs", help="Set the topic configs that drifted (retention, compaction, "
        "min.insync.replicas, ...) to the catalogue's; never partitions or replication.")]
    = False,
    timeout: Timeout = ADMIN_TIMEOUT_S,
) -> None:
    """Create the missing topics and report drift on existing ones. Idempotent."""
    boot = bootstrap(ctx)
    admin, catalogue = _connect(boot)
    try:
        report = apply(admin, catalogue, dry_run=dry_run, timeout=timeout,
                       fix_configs=fix_configs)
    except AdminError as error:
        raise _fail(error, boot) from error
    _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _as_json(state: TopicState) -> dict[str, object]:
    return {"name": state.spec.name, "exists": state.exists, "partitions": state.partitions,
            "replication_factor": state.replication_factor, "key_format": state.spec.key_format,
            "purpose": state.spec.purpose, "configs": dict(state.configs),
            "expected_configs": dict(state.spec.configs)}


def _table(states: list[TopicState]) -> Table:
    table = Table("topic", "exists", "partitions", "rf", "key", "configs (as the broker reports)")
    for column in table.columns:
        column.overflow = "fold"
    for state in states:
        configs = state.configs if state.exists else state.spec.configs
        shown = "\n".join(f"{name}={value}" for name, value in configs.items())
        table.add_row(state.spec.name, "yes" if state.exists else "[red]no[/red]",
                      str(state.partitions if state.exists else f"({state.spec.partitions})"),
                      str(state.replication_factor or "-"), state.spec.key_format,
                      shown if state.exists else f"[dim]{shown}[/dim]")
    return table


@app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
    = False,
    timeout: Timeout = ADMIN_TIMEOUT_S,
) -> None:
    """Show each catalogue topic: exists, partitions, key format, configs as the broker has them."""
    boot = bootstrap(ctx)
    admin, catalogue = _connect(boot)
    try:
        states = describe(admin, catalogue, timeout=timeout)
    except AdminError as error:
        raise _fail(error, boot) from error
    if as_json:
        typer.echo(json.dumps([_as_json(state) for state in states], indent=2))
    else:
        Console().print(_table(states))
