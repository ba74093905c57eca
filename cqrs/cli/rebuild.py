"""`cqrs rebuild PROJECTION`: build a projection into a new schema / index and swap it in.

Exit codes: 0 done; 1 the rebuild could not go on (see the message); 2 bad input.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from cqrs.access.grants import GrantFailed, grant_all
from cqrs.bootstrap import Bootstrap
from cqrs.cli.boot import bootstrap
from projections.rebuild import Bounds, PositionError, parse_offsets, parse_until
from projections.rebuild.build import RebuildReport, rebuild
from projections.rebuild.source import EventSource
from projections.rebuild.target import RebuildError

EXIT_FAILED, EXIT_INVALID = 1, 2
PROJECTIONS = ("postgres", "search")
AFTER_SWAP = {
    "postgres": "the live postgres projector goes on with the new schema; no restart needed",
    "search": "the live search projector moves to the new index (and its checkpoints) on its "
              "next batch, which the old index's write block made it retry; no restart needed",
}

err = Console(stderr=True)
out = Console(soft_wrap=True)


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} ev/s" if speed else "- ev/s", style="progress.data.speed")


class _Bar:
    """`runner.Progress` on a rich progress bar: done / total, to go, rate, ETA."""

    def __init__(self, progress: Progress, label: str) -> None:
        self._progress = progress
        self._task = progress.add_task(label, total=None, to_go=0)

    def update(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total, to_go=total - done)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[to_go]:,} to go"), _Rate(), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=err)


def _bounds(from_offset: str | None, until: str | None) -> Bounds:
    start = parse_offsets(from_offset) if from_offset else {}
    if until is None:
        return Bounds(start=start)
    bound = parse_until(until)
    if isinstance(bound, dict):
        return Bounds(start=start, until_offsets=bound)
    return Bounds(start=start, until_time=bound)


async def _build(projection: str, boot: Bootstrap, bounds: Bounds, keep: bool) -> RebuildReport:
    target = boot.rebuild_target(projection)
    source = EventSource(boot.config.kafka.client_config(), boot.config.catalogue.events.name)
    try:
        with _progress() as progress:
            label = "point in time" if bounds.point_in_time else f"rebuild {projection}"
            return await rebuild(target, source, projection, bounds, _Bar(progress, label),
                                 keep=keep)
    finally:
        source.close()
        await target.close()


async def _list(projection: str, boot: Bootstrap) -> None:
    target = boot.rebuild_target(projection)
    try:
        table = Table("model", "kind", "users", "orders", title=f"{projection} side models "
                      f"(live: {await target.live_name()})")
        for model in await target.models():
            table.add_row(model.name, model.kind, *(str(n) if n is not None else "-"
                                                    for n in (model.users, model.orders)))
        out.print(table)
    finally:
        await target.close()


async def _drop(projection: str, boot: Bootstrap, names: list[str] | None) -> None:
    target = boot.rebuild_target(projection)
    try:
        chosen = names if names is not None else [
            m.name for m in await target.models() if m.kind == "retired"]
        for name in chosen:
            await target.drop(name)
            out.print(f"dropped {name}")
        if not chosen:
            out.print("nothing to drop")
    finally:
        await target.close()


def _report(projection: str, outcome: RebuildReport) -> None:
    out.print(f"built {outcome.model}: {outcome.events:,} events in {outcome.seconds:.1f}s "
              f"({outcome.rate:,.0f} events/s); counters {outcome.counters}")
    for line in outcome.dead_lettered:
        out.print(f"poison (kept out of the model, stream parked): {line}")
    if outcome.swapped:
        out.print(f"swapped: {outcome.model} is live; the old model is "
                  + ("dropped" if outcome.dropped else f"kept as {outcome.retired} "
                     f"(`cqrs rebuild {projection} --drop-old` removes it)"))
        out.print(AFTER_SWAP[projection])
    else:
        out.print(f"point-in-time model {outcome.model} (never swapped in; "
                  f"`--drop {outcome.model}` removes it)")


def rebuild_command(
    ctx: typer.Context,
    projection: Annotated[str, typer.Argument(help="postgres or search.")],
    from_beginning: Annotated[bool, typer.Option(
        "--from-beginning", help="Read every partition from its first offset (the default).")]
    = False,
    from_offset: Annotated[str | None, typer.Option(
        help="First offsets, P:O,... (other partitions from the beginning).")] = None,
    until: Annotated[str | None, typer.Option(
        help="Point-in-time build up to P:O,... (each included) or an ISO 8601 time; "
             "never swapped in.")] = None,
    keep: Annotated[bool, typer.Option(
        "--keep/--no-keep", help="Keep the old model after the swap (drop it with --drop-old).")]
    = True,
    list_models: Annotated[bool, typer.Option("--list", help="List side and old models.")]
    = False,
    drop: Annotated[str | None, typer.Option(help="Drop one side or old model by name.")] = None,
    drop_old: Annotated[bool, typer.Option(
        "--drop-old", help="Drop every old (retired) model.")] = False,
) -> None:
    """Rebuild PROJECTION into a new schema / index while the live one serves, then swap."""
    if projection not in PROJECTIONS:
        err.print(f"error: unknown projection {projection!r}; known: {', '.join(PROJECTIONS)}")
        raise typer.Exit(EXIT_INVALID)
    if from_beginning and from_offset:
        err.print("error: --from-beginning and --from-offset exclude each other")
        raise typer.Exit(EXIT_INVALID)
    boot = bootstrap(ctx)
    try:
        if list_models:
            asyncio.run(_list(projection, boot))
        elif drop is not None or drop_old:
            asyncio.run(_drop(projection, boot, [drop] if drop else None))
        else:
            outcome = asyncio.run(_build(projection, boot, _bounds(from_offset, until), keep))
            _report(projection, outcome)
            if projection == "postgres" and boot.settings.credentials_dir is not None:
                # Secure services: the swapped-in schema was made by the owner, so the default
                # privileges gave the projector its bookkeeping tables too; grant as for a
                # prefix (the projector reads them only).
                grant_all(boot.settings, lambda line: err.print(line, markup=False),
                          ("postgres",))
    except PositionError as error:
        err.print(f"error: {error}")
        raise typer.Exit(EXIT_INVALID) from None
    except RebuildError as error:
        err.print(f"error: {error}")
        raise typer.Exit(EXIT_FAILED) from None
    except GrantFailed as error:
        err.print(f"error: the rebuild is swapped in, but its grants failed: {error}; run "
                  "`cqrs access apply postgres`", markup=False)
        raise typer.Exit(EXIT_FAILED) from None
