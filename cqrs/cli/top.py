"""`cqrs top [--once]`: the pipeline's rates, lag, end-to-end age and dead letters, live."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live

from cqrs import metrics_ports
from cqrs.cli.boot import bootstrap
from cqrs.top import Endpoint, Frame, Scrape, build_frame, render, scrape

# A pipe or a file gets whole lines (scripts grep them); a terminal, its own width.
console = Console(width=None if Console().is_terminal else 120)


def _scrape_all(endpoints: list[Endpoint]) -> dict[str, Scrape]:
    return {e.name: scrape(e.url, time.monotonic()) for e in endpoints}


def _url_help(whose: str, port: int) -> str:
    return (f"The {whose} metrics URL. Default: 127.0.0.1 at its CQRS_*_METRICS_PORT "
            f"(the settings), else {port}.")


def top(
    ctx: typer.Context,
    processor: Annotated[str | None, typer.Option(
        help=_url_help("processor's", metrics_ports.PROCESSOR))] = None,
    postgres: Annotated[str | None, typer.Option(
        help=_url_help("postgres projector's", metrics_ports.PROJECTOR_POSTGRES))] = None,
    search: Annotated[str | None, typer.Option(
        help=_url_help("search projector's", metrics_ports.PROJECTOR_SEARCH))] = None,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between refreshes.")] = 1.0,
    once: Annotated[bool, typer.Option(
        "--once", help="Print one frame (two scrapes, --interval apart) and exit.")] = False,
) -> None:
    """A live view of the pipeline from the processes' /metrics: commands/s and events/s of the
    processor, applied/s, lag, end-to-end age p50/p99, DLQ depth and parked streams of each
    projector. An endpoint that does not answer is shown as down."""
    config = bootstrap(ctx).config
    endpoints = [
        Endpoint("processor", "processor", processor or config.metrics_url("processor")),
        Endpoint("postgres", "projector", postgres or config.metrics_url("postgres")),
        Endpoint("search", "projector", search or config.metrics_url("search")),
    ]
    before = _scrape_all(endpoints)
    if once:
        time.sleep(interval)
        console.print(render(build_frame(endpoints, _scrape_all(endpoints), before)))
        return
    frame: Frame = build_frame(endpoints, before)
    with Live(render(frame), console=console, refresh_per_second=4, screen=False) as live:
        try:
            while True:
                time.sleep(interval)
                now = _scrape_all(endpoints)
                live.update(render(build_frame(endpoints, now, before)))
                before = now
        except KeyboardInterrupt:
            pass
