"""`cqrs gateway keys add|list|revoke`: the gateway's API keys (`cqrs.gateway.keys`).

`add` prints the raw key, and only it, on stdout, once (`KEY=$(cqrs gateway keys add ci)`);
notes go to stderr. The keys file is `--keys-file`, else `cqrs gateway --keys-file`, else
`CQRS_GATEWAY_KEYS_FILE`. A running gateway picks changes up within a second.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from cqrs.cli.boot import bootstrap
from cqrs.gateway.keys import KeysError, add, load, revoke

KEYS_FILE = "cqrs.gateway.keys_file"
"""`ctx.meta` key: the `--keys-file` given to `cqrs gateway` itself."""
EXIT_ERROR = 1

app = typer.Typer(help="API keys of the gateway: add (prints the key once), list, revoke.",
                  no_args_is_help=True)



class ScopeChoice(StrEnum):
    commands = "commands"
    read = "read"


KeysFile = Annotated[Path | None, typer.Option(
    "--keys-file", dir_okay=False,
    help="The keys file (default: CQRS_GATEWAY_KEYS_FILE).")]


@app.command("add")
def add_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who holds the key (unique in the file).")],
    scope: Annotated[ScopeChoice, typer.Option(
        help="commands: send commands and query; read: query only.")] = ScopeChoice.commands,
    keys_file: KeysFile = None,
) -> None:
    """Issue a key: its hash goes into the keys file (created 0600 if missing), the key itself
    to stdout, once. Nothing else keeps it."""
    path = _keys_file(ctx, keys_file)
    try:
        raw, key = add(path, name, scope.value)
    except KeysError as error:
        _fail(str(error))
    typer.echo(f"added key {key.name!r} (scope {key.scope}, id {key.key_id}) to {path}; it is "
               "printed once, on stdout: keep it now. A running gateway accepts it within 1 s.",
               err=True)
    typer.echo(raw)


@app.command("list")
def list_keys(ctx: typer.Context, keys_file: KeysFile = None) -> None:
    """The keys' names, scopes and ids (never their hashes)."""
    path = _keys_file(ctx, keys_file)
    try:
        keys = load(path)
    except KeysError as error:
        _fail(str(error))
    if not keys:
        typer.echo(f"no keys in {path}", err=True)
        return
    width = max(len("NAME"), *(len(key.name) for key in keys))
    typer.echo(f"{'NAME':<{width}}  {'SCOPE':<8}  ID")
    for key in keys:
        typer.echo(f"{key.name:<{width}}  {key.scope:<8}  {key.key_id}")


@app.command("revoke")
def revoke_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The key to remove.")],
    keys_file: KeysFile = None,
) -> None:
    """Remove a key: a running gateway refuses it within a second."""
    path = _keys_file(ctx, keys_file)
    try:
        key = revoke(path, name)
    except KeysError as error:
        _fail(str(error))
    typer.echo(f"revoked key {key.name!r} (id {key.key_id}) from {path}", err=True)


def _keys_file(ctx: typer.Context, given: Path | None) -> Path:
    path = given or ctx.meta.get(KEYS_FILE) or bootstrap(ctx, None).settings.gateway_keys_file
    if path is None:
        _fail("no keys file: pass --keys-file PATH or set CQRS_GATEWAY_KEYS_FILE")
    return Path(path)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)
