"""`cqrs gateway [--host --port]`: serve the HTTP gateway with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from cqrs.cli.boot import bootstrap
from cqrs.gateway import create_app


def gateway(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Serve the commands and queries over HTTP (OpenAPI docs at /docs, health at /healthz)."""
    uvicorn.run(create_app(bootstrap(ctx).open_services), host=host, port=port, log_level=log_level)
