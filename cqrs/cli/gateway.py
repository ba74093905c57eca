"""`cqrs gateway [--host --port]`: serve the HTTP gateway with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from cqrs.cli.boot import bootstrap, configure_logging
from cqrs.gateway import create_app


def gateway(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    log_level: Annotated[str | None, typer.Option(
        help="debug logs one line per command (default: `cqrs --log-level`, else info).",
    )] = None,
) -> None:
    """Serve the commands and queries over HTTP (OpenAPI docs at /docs, health at /healthz,
    /livez and /readyz, Prometheus metrics at /metrics)."""
    level = configure_logging(ctx, log_level)["root"]["level"].lower()
    boot = bootstrap(ctx)
    app = create_app(boot.open_services, prefix=boot.config.prefix)
    # log_config=None: uvicorn's records go through the process's handler (JSON lines).
    uvicorn.run(app, host=host, port=port, log_level=level, log_config=None)
