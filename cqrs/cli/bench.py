"""`cqrs bench`: measure every stage of the pipeline against the running services."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cqrs.cli.boot import bootstrap


def bench(
    ctx: typer.Context,
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller volumes: about 3 minutes.")
    ] = False,
    smoke: Annotated[bool, typer.Option("--smoke", hidden=True)] = False,
    out: Annotated[Path | None, typer.Option(
        help="Output folder (default bench/results/<UTC timestamp>).")] = None,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Only this stage (repeatable; default: all), e.g. `--only state`; an "
        "unknown name lists them.")] = None,
) -> None:
    """Throughput, latency, replay and memory of each stage; writes results.json, results.md and
    PNG plots. Needs the services (`cqrs services up`); about 10-15 minutes, --quick about 3."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        typer.echo("cqrs bench plots with matplotlib: pip install -e '.[bench]'", err=True)
        raise typer.Exit(2) from None
    from bench.runner import STAGE_NAMES, default_out, run

    unknown = sorted(set(only or ()) - set(STAGE_NAMES))
    if unknown:
        typer.echo(f"unknown stage {', '.join(unknown)}: choose from {', '.join(STAGE_NAMES)}",
                   err=True)
        raise typer.Exit(2)

    mode = "smoke" if smoke else "quick" if quick else "default"
    folder = out or default_out()
    results = run(bootstrap(ctx).config.bench(), mode, folder, only=only)
    typer.echo((folder / "results.md").read_text())
    typer.echo(f"results in {folder}")
    if results["errors"]:
        raise typer.Exit(1)
