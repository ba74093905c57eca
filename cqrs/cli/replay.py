"""`cqrs replay PROJECTION --from-…`: move a stopped projector's position; `--wait` to follow it.

See docs/operations.md: refused while the projector runs (the store checkpoint is its truth and
it would overwrite it); when stopped, the store checkpoint and the group offsets are both moved.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cqrs.cli.boot import bootstrap
from cqrs.cli.ops import Context, context, err
from projections.operations import (
    InvalidPosition,
    KafkaOps,
    OperableStore,
    StartAt,
    parse_offsets,
    parse_timestamp,
    replay,
)
from projections.operations.lag import partition_lags


def start_at(beginning: bool, offsets: str | None, timestamp: str | None,
             partition: int | None) -> StartAt:
    if sum((beginning, offsets is not None, timestamp is not None)) != 1:
        raise InvalidPosition(
            "give exactly one of --from-beginning, --from-offset P:O[,P:O…], --from-timestamp")
    if offsets is not None:
        parsed = parse_offsets(offsets)
        if partition is not None and partition not in parsed:
            raise InvalidPosition(f"--partition {partition} has no offset in --from-offset")
        return StartAt("offsets", offsets=parsed, partition=partition)
    if timestamp is not None:
        return StartAt("timestamp", millis=parse_timestamp(timestamp), partition=partition)
    return StartAt("beginning", partition=partition)


async def follow(kafka: KafkaOps, store: OperableStore, topic: str, start: dict[int, int],
                 timeout: float | None, poll: float = 0.5) -> int:
    """Show progress until the store checkpoints of `start`'s partitions reach the end of the
    topic; returns the events done (exit 3 on timeout)."""
    began = time.monotonic()
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} events/s"), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    done = 0
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("replay", total=None, rate="-")
        while True:
            checkpoints = await store.checkpoints(topic)
            positions = {p: checkpoints.get(p, -1) + 1 for p in start}
            lags = [row for row in partition_lags(kafka, topic, positions)
                    if row.partition in start]
            done = sum(max(0, positions[row.partition] - start[row.partition]) for row in lags)
            to_go = sum(row.lag for row in lags)
            speed = progress.tasks[0].speed
            progress.update(task, completed=done, total=done + to_go,
                            rate=f"{speed:,.0f}" if speed else "-")
            if to_go == 0:
                break
            if timeout is not None and time.monotonic() - began > timeout:
                err.print(f"[red]timed out[/red] after {timeout:.0f}s: {to_go} still to go")
                raise typer.Exit(3)
            await asyncio.sleep(poll)
    elapsed = time.monotonic() - began
    err.print(f"caught up: {done} events in {elapsed:.1f}s ({done / max(elapsed, 1e-9):,.0f}/s)")
    return done


async def _run(ctx: Context, name: str, start: StartAt, wait: bool,
               timeout: float | None) -> None:
    store = ctx.store(name)
    try:
        await store.start()
        plan = await replay(ctx.kafka, store, name=name, group=ctx.group(name),
                            topic=ctx.events, start=start)
        for partition in sorted(plan.after):
            before = plan.before.get(partition, "-")
            err.print(f"{ctx.events}[{partition}]: checkpoint {before}"
                      f" → {plan.after[partition]} (next offset {plan.after[partition] + 1},"
                      f" end {plan.ends[partition]})")
        err.print(f"{plan.to_go} offsets to replay; start it with `cqrs project {name}`"
                  " (writes are guarded by version: replaying over the model is idempotent)")
        if wait:
            await follow(ctx.kafka, store, ctx.events,
                         {p: offset + 1 for p, offset in plan.after.items()}, timeout)
    finally:
        await store.close()


def replay_command(
    invocation: typer.Context,
    projection: Annotated[str, typer.Argument(help="Projector name (postgres, search).")],
    from_beginning: Annotated[bool, typer.Option("--from-beginning")] = False,
    from_offset: Annotated[str | None, typer.Option(
        "--from-offset", help="P:O[,P:O…]: read offset O of partition P next.")] = None,
    from_timestamp: Annotated[str | None, typer.Option(
        "--from-timestamp", help="ISO 8601: the first event at or after it (UTC if no zone).")
    ] = None,
    partition: Annotated[int | None, typer.Option(help="Move only this partition.")] = None,
    wait: Annotated[bool, typer.Option(
        "--wait", help="Then show progress until the (separately started) projector caught up.")
    ] = False,
    timeout: Annotated[float | None, typer.Option(help="Give up waiting after SECONDS (exit 3).")
    ] = None,
) -> None:
    """Move a STOPPED projector's position (store checkpoint and group offsets)."""
    with context(bootstrap(invocation)) as ctx:
        start = start_at(from_beginning, from_offset, from_timestamp, partition)
        asyncio.run(_run(ctx, projection, start, wait, timeout))
