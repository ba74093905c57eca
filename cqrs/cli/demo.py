"""`cqrs demo`: the seed's scenario through the real pipeline, with a readable report."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

import typer
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.markup import escape

from cqrs.access.grants import GrantFailed, grant_all
from cqrs.cli.boot import bootstrap
from cqrs.config import Config
from cqrs.demo import Scenario, Step, Workers
from cqrs.demo.scenario import ScenarioFailed
from cqrs.services import Layout
from pipeline.client import CommandClient
from projections.postgres.store import PostgresStore
from projections.search import IndexNames, UserSearch
from projections.search.client import make_client
from topics import apply

console = Console(soft_wrap=True, highlight=False)


def _report(step: Step) -> None:
    mark = "[green]ok[/green]  " if step.ok else "[red]FAIL[/red]"
    console.print(f"{mark} {step.title}: {step.detail}")


async def _play(config: Config, client: CommandClient, run: str) -> Scenario:
    store = PostgresStore.live(config.postgres)
    await store.start()  # applies the migrations, in case the projector has not yet
    search_client = make_client(config.search)
    search = UserSearch(search_client, IndexNames.for_prefix(config.prefix).alias)
    scenario = Scenario(client, store, search, run, _report)
    try:
        await scenario.play()
    finally:
        await store.close()
        await search_client.close()
    return scenario


def demo(
    ctx: typer.Context,
    keep_running: Annotated[
        bool, typer.Option(help="Leave the processor and projectors the demo started running.")
    ] = False,
) -> None:
    """Play the seed's scenario: users, search, update, statistics, a rejection, orders.

    Starts the processor and both projectors when their consumer groups have no members, and
    stops those again at the end (unless --keep-running). Exit 0 only if every step gave the
    expected answer. On secure services (`cqrs services up --secure`) it first grants each role
    its rights on the prefix (`cqrs access apply`), each worker runs as its own role, and the
    scenario sends and reads as the client role.
    """
    admin = bootstrap(ctx)
    config = admin.config
    kafka = config.kafka.client_config()
    report = apply(AdminClient(kafka), config.catalogue)
    if report.drift:
        console.print("[red]topic drift:[/red] " + "; ".join(map(str, report.drift)))
        console.print("`cqrs topics apply --fix-configs` sets drifted topic configs to the "
                      "catalogue's (an upgrade may add one)")
        raise typer.Exit(1)
    if admin.settings.credentials_dir is not None:
        # Secure services: each role its rights on this prefix, then the scenario as a client.
        try:
            grant_all(admin.settings, lambda line: console.print(line, markup=False))
        except GrantFailed as error:
            console.print(f"[red]error:[/red] {escape(str(error))}")
            raise typer.Exit(1) from error
    client = admin.for_role("client").config
    workers = Workers(kafka, config.prefix, Layout.from_env().state_dir / "pipeline")
    workers.ensure(lambda line: console.print(line))
    run = uuid.uuid4().hex[:6]
    console.rule(f"demo run {run}")
    failed = False
    try:
        with CommandClient(client.kafka.client_config(), client.catalogue) as commands:
            scenario = asyncio.run(_play(client, commands, run))
        console.rule(f"[green]all {len(scenario.steps)} steps gave the expected answer[/green]")
    except ScenarioFailed as step:
        failed = True
        console.rule(f"[red]step failed: {step}[/red]")
    except Exception as error:
        failed = True
        console.print(f"[red]error:[/red] {type(error).__name__}: {escape(str(error))}")
        for line in workers.exited():
            console.print(f"[red]{line}[/red]")
    finally:
        if not keep_running:
            workers.stop(lambda line: console.print(line))
    if failed:
        raise typer.Exit(1)
