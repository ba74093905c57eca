"""What `cqrs replay`, `cqrs lag` and `cqrs dlq` share: settings read once, Kafka, errors → exits.

Exit codes: 0 done, 1 refused or failed (the message says why: projector running, still poison,
unknown name), 2 invalid arguments, 3 `--wait` timed out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from cqrs.settings import Settings
from projections.operations import InvalidPosition, KafkaOps, OperationsError
from topics.catalogue import Catalogue

err = Console(stderr=True, highlight=False)


def out() -> Console:
    """Standard output; wide when it is not a terminal, so piped tables are not squeezed."""
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=160)


@dataclass(frozen=True)
class Context:
    settings: Settings
    catalogue: Catalogue
    kafka: KafkaOps

    @property
    def events(self) -> str:
        return self.catalogue.events.name

    def dlq_of(self, name: str) -> tuple[str, str]:
        """`name` (a projector, `commands`, or a DLQ topic) → (DLQ topic, owner name)."""
        owners = {self.catalogue.commands_dlq.name: "commands"} | {
            self.catalogue.projection_dlq(p).name: p for p in self.catalogue.projectors}
        if name in owners:
            return name, owners[name]
        for topic, owner in owners.items():
            if owner == name:
                return topic, owner
        raise OperationsError(f"no DLQ named {name!r}; known: {', '.join(owners.values())} "
                              f"or {', '.join(owners)}")


@contextmanager
def context() -> Iterator[Context]:
    """Settings (once), the catalogue and a Kafka client; failures become exit codes."""
    settings = Settings()
    quiet = logging.getLogger("cqrs.cli.librdkafka")
    quiet.setLevel(logging.CRITICAL)
    config: dict[str, Any] = {**settings.kafka_config(), "logger": quiet}
    kafka = KafkaOps(config)
    try:
        yield Context(settings, settings.catalogue(), kafka)
    except InvalidPosition as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from error
    except OperationsError as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from error
    finally:
        kafka.close()
