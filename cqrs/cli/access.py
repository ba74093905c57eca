"""`cqrs access apply`: least privilege for this topic prefix on the secure services."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cqrs.access.elasticsearch import (
    AccessError,
    retire_elasticsearch_user,
    rotate_elasticsearch_user,
)
from cqrs.access.grants import GRANTS, GrantFailed, NotSecure, grant_all
from cqrs.cli.boot import bootstrap
from cqrs.services.credentials import ROLES, RoleFiles
from cqrs.services.elasticsearch_realm import SEARCH_USERS
from cqrs.settings import Settings

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
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from error
    except GrantFailed as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from error
    console.print("[green]access applied[/green]")


def _admin(ctx: typer.Context) -> tuple[Settings, RoleFiles]:
    settings = bootstrap(ctx).settings
    if settings.credentials_dir is None:
        console.print("[red]error:[/red] no credentials directory (CQRS_CREDENTIALS_DIR): run "
                      '`eval "$(cqrs services env)"` for the secure services first')
        raise typer.Exit(2)
    return settings, RoleFiles(settings.credentials_dir)


@app.command("rotate-search-user")
def rotate_search_user(
    ctx: typer.Context,
    role: Annotated[str, typer.Argument(help=f"One of {', '.join(SEARCH_USERS)}.")],
) -> None:
    """Give a search role a new Elasticsearch user and password (the old one keeps working):
    restart the role's processes, then `cqrs access retire-search-user OLD`. Prints the old
    user's name on stdout."""
    settings, roles = _admin(ctx)
    chosen = next((known for known in ROLES if known == role and known in SEARCH_USERS), None)
    if chosen is None:
        raise typer.BadParameter(f"{role!r} is not one of {', '.join(SEARCH_USERS)}")
    try:
        old = rotate_elasticsearch_user(settings, roles, chosen,
                                        lambda line: console.print(line, markup=False))
    except AccessError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from error
    print(old)


@app.command("retire-search-user")
def retire_search_user(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The user a rotation replaced.")],
) -> None:
    """Remove a search user a rotation replaced (refused while a role's file names it)."""
    settings, roles = _admin(ctx)
    try:
        retire_elasticsearch_user(settings, roles, user,
                                  lambda line: console.print(line, markup=False))
    except AccessError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from error
