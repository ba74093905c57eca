"""How a command reaches the invocation's `Bootstrap` (the root callback puts it in `ctx.obj`)."""

from __future__ import annotations

import typer

from cqrs.bootstrap import Bootstrap


def bootstrap(ctx: typer.Context) -> Bootstrap:
    """The `Bootstrap` of this invocation: the one a test passed as `obj`, or else a new one
    (settings read on first use), kept in the root context for every command of the run."""
    return ctx.ensure_object(Bootstrap)
