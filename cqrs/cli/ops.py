"""What `cqrs replay`, `cqrs lag` and `cqrs dlq` share: the config, Kafka, errors → exit codes.

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

from cqrs.bootstrap import Bootstrap
from cqrs.config import Config
from projections.operations import (
    InvalidPosition,
    KafkaOps,
    OperableStore,
    OperationsError,
    group_of,
    open_store,
)
from topics import Catalogue

err = Console(stderr=True, highlight=False)


def out() -> Console:
    """Standard output; wide when it is not a terminal, so piped tables are not squeezed."""
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=160)


@dataclass(frozen=True)
class Context:
    config: Config
    kafka: KafkaOps

    @property
    def catalogue(self) -> Catalogue:
        return self.config.catalogue

    @property
    def events(self) -> str:
        return self.catalogue.events.name

    def store(self, name: str) -> OperableStore:
        """Projector `name`'s store, built as its composition root builds it (not started)."""
        return open_store(name, self.config.projections())

    def group(self, name: str) -> str:
        """Projector `name`'s consumer group."""
        return group_of(name, self.config.prefix)

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
def context(boot: Bootstrap) -> Iterator[Context]:
    """The bootstrap's config and a Kafka client; failures become exit codes."""
    config = boot.config
    quiet = logging.getLogger("cqrs.cli.librdkafka")
    quiet.setLevel(logging.CRITICAL)
    client_config: dict[str, Any] = {**config.kafka.client_config(), "logger": quiet}
    kafka = KafkaOps(client_config)
    try:
        yield Context(config, kafka)
    except InvalidPosition as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from error
    except OperationsError as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from error
    finally:
        kafka.close()
