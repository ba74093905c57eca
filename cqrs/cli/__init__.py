"""The `cqrs` command line: one Typer app, its command groups registered here and only here.

Its callback puts the invocation's `Bootstrap` (settings read once, adapters) in `ctx.obj`;
every command takes its dependencies from there (`cqrs.cli.boot.bootstrap`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from cqrs.bootstrap import Bootstrap
from cqrs.cli import (
    access,
    bench,
    boot,
    demo,
    gateway,
    manage,
    processor,
    project,
    query,
    send,
    services,
    smoke,
    topics,
)
from cqrs.cli.dlq import app as dlq_app
from cqrs.cli.lag import lag
from cqrs.cli.rebuild import rebuild_command
from cqrs.cli.replay import replay_command
from cqrs.cli.top import top

app = typer.Typer(
    name="cqrs",
    help="CQRS and event sourcing on Kafka: services, topics, commands, projections, queries.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    log_format: Annotated[
        str | None,
        typer.Option(envvar="CQRS_LOG_FORMAT", help="Log lines of the long-running processes "
                     "(processor, projectors, gateway): json (default) or text."),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(envvar="CQRS_LOG_LEVEL", help="debug, info, warning or error (default "
                     "info); debug logs one line per command or event."),
    ] = None,
) -> None:
    ctx.ensure_object(Bootstrap)
    boot.keep_log_options(ctx, log_level, log_format)


app.add_typer(services.app, name="services")
app.add_typer(project.app, name="project")
app.add_typer(topics.app, name="topics")
app.add_typer(access.app, name="access")
app.command("send", cls=send.SendCommand)(send.send)
app.command("processor")(processor.processor)
app.command("manage")(manage.manage)
app.command("smoke")(smoke.smoke)
app.add_typer(query.get_app, name="get")
app.add_typer(query.stats_app, name="stats")
app.command("search")(query.search)
app.command("orders")(query.orders)
app.add_typer(gateway.app, name="gateway")
app.command("demo")(demo.demo)
app.command("replay")(replay_command)
app.command("lag")(lag)
app.add_typer(dlq_app, name="dlq")
app.command("bench")(bench.bench)
app.command("rebuild")(rebuild_command)
app.command("top")(top)


def main() -> None:
    """Run the command line."""
    app()
