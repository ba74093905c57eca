"""`cqrs processor`: run one aggregate processor process (the composition root)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from cqrs.cli.boot import bootstrap, configure_logging
from observability import served
from pipeline.processor.config import ProcessorConfig, default_instance_id
from pipeline.processor.transactions import ProducerFenced

log = logging.getLogger(__name__)


FENCED_EXIT = 78
"""EX_CONFIG: another process uses this transactional id; restarting would only fence it back."""


def processor(
    ctx: typer.Context,
    instance_id: Annotated[
        str | None,
        typer.Option(
            envvar="CQRS_PROCESSOR_INSTANCE_ID",
            help="This process's slot; its transactional id derives from it. Default: the "
            "host name (distinct per container, stable across its restarts).",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(
        min=1, help="Most commands per transaction.")] = ProcessorConfig.batch_size,
    batch_ms: Annotated[int, typer.Option(
        min=1, help="Longest a batch stays open (ms); it also closes once the commands "
        "queued are taken.")] = ProcessorConfig.batch_ms,
    log_level: Annotated[str | None, typer.Option(
        help="DEBUG logs one line per command (default: `cqrs --log-level`, else INFO).",
    )] = None,
    metrics_port: Annotated[int | None, typer.Option(
        min=0, max=65535,
        help="Serve /metrics, /livez, /readyz on this port; 0 disables. Default: "
        "CQRS_PROCESSOR_METRICS_PORT, else 9401.",
    )] = None,
) -> None:
    """Run the aggregate processor until SIGTERM/SIGINT (then finish the batch and exit 0).

    Exits 78 when another processor with the same transactional id fenced this one."""
    configure_logging(ctx, log_level)
    settings = bootstrap(ctx, "processor").config
    config = settings.processor(instance_id or default_instance_id(), batch_size, batch_ms)
    port = settings.processor_metrics_port if metrics_port is None else metrics_port
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    running = bootstrap(ctx, "processor").processor(config)
    try:
        # A port that cannot be bound is logged and the processor runs on without it.
        with served(port, running.metrics.registry, running.health,
                    hint="a second processor on this host needs another --metrics-port, "
                    "0 disables"):
            running.run(stop)
    except ProducerFenced as fenced:
        typer.echo(f"error: {fenced}", err=True)
        raise typer.Exit(FENCED_EXIT) from None
