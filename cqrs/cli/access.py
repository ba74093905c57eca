"""`cqrs access apply`: least privilege for this topic prefix on the secure services."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from cqrs.access.grants import GRANTS, GrantFailed, NotSecure, grant_all
from cqrs.cli.boot import bootstrap

app = typer.Typer(help="Grant each role only its rights on the secure services "
                       "(docs/security.md).")
console = Console(stderr=True, soft_wrap=True, highlight=False)


@app.command("apply")
def apply_command(
    ctx: typer.Context,
    services: Annotated[list[str] | None, typer.Argument(
        help=f"Services to grant on ({', '.join(GRANTS)}); default all.")] = None,
) -> None:
    """As admin, for the topic prefix (CQRS_TOPIC_PREFIX): Kafka ACLs for each principal on the
    prefix's topics, groups and transactional ids; PostgreSQL migrations of the prefix's schema
    and each role's privileges on it; Elasticsearch's search roles widened to the prefix's indices.
    Idempotent: run it once per prefix, after `cqrs services up --secure`."""
    chosen = tuple(services or GRANTS)
    unknown = sorted(set(chosen) - set(GRANTS))
    if unknown:
        raise typer.BadParameter(f"unknown service(s) {unknown}; choose from {list(GRANTS)}")
    try:
        grant_all(bootstrap(ctx).settings, lambda line: console.print(line, markup=False),
                  chosen)
    except NotSecure as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    except GrantFailed as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from error
    console.print("[green]access applied[/green]")
