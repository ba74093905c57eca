"""`cqrs lag [--json]`: per projector and partition, the store checkpoint against the end of the
events topic, DLQ depth, parked records and state; the processor against the commands topic."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.table import Table

from cqrs.cli.boot import bootstrap
from cqrs.cli.ops import Context, context, err, out
from projections.operations import (
    ComponentLag,
    processor_lag,
    projector_lag,
)
from projections.operations.errors import OperationsError
from projections.operations.managers import manager_lags
from projections.registry import PROJECTORS
from projections.runtime import TransientError


async def _projector(ctx: Context, name: str) -> ComponentLag:
    store = ctx.store(name)
    try:
        await store.start()
        return await projector_lag(ctx.kafka, store, name=name, group=ctx.group(name),
                                   events=ctx.events,
                                   dlq=ctx.catalogue.projection_dlq(name).name)
    finally:
        await store.close()


def collect(ctx: Context, only: list[str] | None = None) -> list[ComponentLag]:
    """The processor's lag, then each registered projector's (or those in `only`; `managers` for
    the process managers), then the process managers'; a projector whose store is unreachable is
    reported and left out."""
    rows = [processor_lag(ctx.kafka, group=f"{ctx.config.prefix}processor",
                          commands=ctx.catalogue.commands.name,
                          dlq=ctx.catalogue.commands_dlq.name)]
    for name in ctx.catalogue.projectors:
        if name not in PROJECTORS or (only and name not in only):
            continue
        try:
            rows.append(asyncio.run(_projector(ctx, name)))
        except TransientError as error:
            err.print(f"[yellow]{name}: store unreachable[/yellow] ({error})")
    if not only or "managers" in only:
        try:
            rows.extend(manager_lags(ctx.kafka, ctx.catalogue))
        except OperationsError as error:  # a deployment whose topics predate the managers
            err.print(f"[yellow]managers: left out[/yellow] ({error})")
    return rows


def table(rows: list[ComponentLag]) -> Table:
    view = Table("component", "state", "partition", "position", "end", "lag", "dlq depth",
                 "parked", "blocked")
    for row in rows:
        state = row.state
        if row.details:
            state += "\n" + "\n".join(f"{name}: {count}" for name, count in row.details.items())
        view.add_row(row.name, state, "all", "", "", str(row.lag), str(row.dlq_depth),
                     str(row.parked), str(row.blocked), style="bold")
        for part in row.partitions:
            position = "-" if part.position is None else str(part.position)
            view.add_row("", "", str(part.partition), position, str(part.end), str(part.lag),
                         "", "", "")
    return view


def lag(
    invocation: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    projector: Annotated[list[str] | None, typer.Option(
        "--projector", "-p", help="Only these projectors (repeatable; `managers`: the process "
        "managers; default: all).")] = None,
) -> None:
    """Lag, DLQ depth, parked records and state of the processor, every projector and the
    process managers (with their tables' customers and open orders).

    Position is the next offset to read: a projector's store checkpoint + 1 (its truth), the
    processor's committed offset. Lag counts offsets to the end (0 if only transaction markers
    are left)."""
    with context(bootstrap(invocation)) as ctx:
        rows = collect(ctx, projector)
    if as_json:
        typer.echo(json.dumps([row.as_json() for row in rows], indent=2))
    else:
        out().print(table(rows))
