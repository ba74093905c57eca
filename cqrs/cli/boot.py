"""How a command reaches the invocation's `Bootstrap` (the root callback puts it in `ctx.obj`),
and the logging options of the invocation (`cqrs --log-format --log-level`)."""

from __future__ import annotations

from typing import Any

import typer

from cqrs import logs
from cqrs.bootstrap import Bootstrap
from cqrs.services.credentials import CredentialsError, Role

_LOG_OPTIONS = "cqrs.log_options"


def bootstrap(ctx: typer.Context, role: Role | None = "admin") -> Bootstrap:
    """The `Bootstrap` of this invocation: the one a test passed as `obj`, or else a new one
    (settings read on first use), kept in the root context for every command of the run.

    `role` is whose credentials the command runs with (`cqrs.services.credentials`): the
    workers and the clients name theirs; the operator's commands are `admin`'s. A
    credentials file others may read ends the command with what to do."""
    boot = ctx.ensure_object(Bootstrap)
    if "settings" not in boot.__dict__:  # not read yet: this command's role decides
        boot.role = role
    boot = boot.for_role(role)
    try:
        boot.settings  # noqa: B018 - read now, so a bad credentials file fails here, clearly
    except CredentialsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    return boot


def keep_log_options(ctx: typer.Context, level: str | None, fmt: str | None) -> None:
    """Remember the root's `--log-level` / `--log-format` for the command that configures."""
    if fmt is not None and fmt not in logs.FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of json, text", param_hint="--log-format")
    ctx.meta[_LOG_OPTIONS] = (level, fmt)


def logging_config(ctx: typer.Context, level: str | None = None,
                   default_format: str = "json") -> dict[str, Any]:
    """The invocation's logging configuration: `level` (a command's own option) or the root's
    `--log-level` or INFO; the root's `--log-format` or `default_format`."""
    root_level, root_format = ctx.meta.get(_LOG_OPTIONS, (None, None))
    try:
        return logs.logging_config(level or root_level or "INFO", root_format or default_format)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--log-level") from None


def configure_logging(ctx: typer.Context, level: str | None = None,
                      default_format: str = "json") -> dict[str, Any]:
    """Configure the process's logging (`logging_config`), and return that configuration."""
    config = logging_config(ctx, level, default_format)
    logs.apply(config)
    return config
