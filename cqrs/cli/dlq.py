"""`cqrs dlq list|show|retry`: dead-lettered records of a projector (`postgres`, `search`) or of
the processor (`commands`); retry semantics in `projections.operations.dlq`."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cqrs.cli.boot import bootstrap
from cqrs.cli.ops import Context, context, err, out
from projections.operations import (
    DlqEntry,
    OperationsError,
    RetryOutcome,
    ensure_stopped,
    entries,
    entry_at,
    parse_position,
    retry_command,
    retry_projector,
    with_status,
)
from projections.runtime import TransientError

app = typer.Typer(help="Inspect and retry dead-lettered records.", no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="postgres, search, commands, or a DLQ topic name.")]


async def _statuses(ctx: Context, owner: str, found: list[DlqEntry]) -> list[DlqEntry]:
    if owner == "commands" or not found:
        return found
    store = ctx.store(owner)
    try:
        await store.start()
        return await with_status(store, found)
    except TransientError as error:
        err.print(f"[yellow]{owner}: store unreachable, no status[/yellow] ({escape(str(error))})")
        return [replace(entry, status="unknown") for entry in found]
    finally:
        await store.close()


def _table(topic: str, found: list[DlqEntry]) -> Table:
    view = Table("position", "key", "source", "stream", "error", "status", title=topic)
    for entry in found:
        source = "-" if entry.source is None else "{}[{}]@{}".format(*entry.source)
        key = (entry.key or b"").decode("utf-8", errors="replace")
        view.add_row(f"{entry.partition}:{entry.offset}", escape(key), source,
                     entry.stream_id or "-", escape(entry.error[:80]), entry.status)
    return view


@app.command("list")
def list_(
    invocation: typer.Context,
    name: Annotated[str | None, typer.Argument(help="A DLQ (default: all of them).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most N records per DLQ.")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dead-lettered records with their source, error and (projectors) status."""
    with context(bootstrap(invocation)) as ctx:
        names = [name] if name else ["commands", *ctx.catalogue.projectors]
        listing: dict[str, list[DlqEntry]] = {}
        for each in names:
            topic, owner = ctx.dlq_of(each)
            listing[topic] = asyncio.run(_statuses(ctx, owner, entries(ctx.kafka, topic, limit)))
    if as_json:
        typer.echo(json.dumps({topic: [e.as_json() for e in found]
                               for topic, found in listing.items()}, indent=2))
        return
    for topic, found in listing.items():
        out().print(_table(topic, found))


@app.command("show")
def show(invocation: typer.Context, name: NameArg,
         position: Annotated[str, typer.Argument(help="P:O, from `dlq list`.")]) -> None:
    """One record: headers decoded, value as JSON when it parses."""
    with context(bootstrap(invocation)) as ctx:
        topic, owner = ctx.dlq_of(name)
        partition, offset = parse_position(position)
        entry = asyncio.run(_statuses(ctx, owner, [entry_at(ctx.kafka, topic, partition, offset)]))
    typer.echo(json.dumps(entry[0].as_json(), indent=2, ensure_ascii=False))


async def _retry_projector(ctx: Context, owner: str, chosen: list[DlqEntry],
                           ) -> list[RetryOutcome]:
    store = ctx.store(owner)
    try:
        await store.start()
        return [await retry_projector(store, entry, ctx.kafka) for entry in chosen]
    finally:
        await store.close()


@app.command("retry")
def retry(
    invocation: typer.Context,
    name: NameArg,
    position: Annotated[str | None, typer.Argument(help="P:O of the record.")] = None,
    retry_all: Annotated[bool, typer.Option("--all", help="Every record of the DLQ.")] = False,
) -> None:
    """Projector DLQ (projector stopped): release the blocked stream by re-applying the event and
    its parked successors through the store. Commands DLQ: re-produce the command."""
    with context(bootstrap(invocation)) as ctx:
        topic, owner = ctx.dlq_of(name)
        if (position is None) == (not retry_all):
            raise OperationsError("give a position P:O or --all")
        if retry_all:
            chosen = entries(ctx.kafka, topic)
        else:
            assert position is not None
            chosen = [entry_at(ctx.kafka, topic, *parse_position(position))]
        if owner == "commands":
            commands = ctx.catalogue.commands.name
            outcomes = [retry_command(ctx.kafka, topic, commands, e) for e in chosen]
        else:
            ensure_stopped(ctx.kafka, ctx.group(owner), owner)
            outcomes = asyncio.run(_retry_projector(ctx, owner, chosen))
    failed = False
    for outcome in outcomes:
        failed |= outcome.failed
        err.print(f"{outcome.entry.partition}:{outcome.entry.offset} "
                  f"{outcome.entry.stream_id or '-'}: {escape(outcome.result)}")
    if failed:
        raise typer.Exit(1)
