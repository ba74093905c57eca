"""The composition root of every `cqrs` entry point: settings read once, adapters built from them.

`Bootstrap` reads `Settings` (the `CQRS_*` environment) on first use and never again, and turns
them into `Config` (the narrow configs each package takes). The `cqrs` command line makes one per
invocation (its callback puts it in `ctx.obj`; every command takes its dependencies from it), the
gateway one per app. The adapters it builds are real by default; tests hand it fakes for the same
seams, which is the one way anything is injected:

- `command_client`: a `Sender` (the `pipeline.client.CommandClient`, or a fake);
- `read_side`: the query side (`cqrs.gateway.compose.open_read_side`);
- `services`: the gateway's services (`cqrs.gateway.compose.build_services`);
- `rebuild_target`: the target of `cqrs rebuild PROJECTION`;
- `processor`: the aggregate processor of `cqrs processor` (on Kafka, or on
  `pipeline.processor.memory.MemoryBroker.processor`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from cqrs.config import Config
from cqrs.gateway import compose
from cqrs.gateway.compose import ReadSide, Services
from cqrs.services.credentials import Role
from cqrs.settings import Settings
from pipeline.client import CommandClient
from pipeline.processor import Processor, ProcessorConfig
from pipeline.processor.bootstrap import kafka_processor
from topics import CommandEnvelope, CommandResult

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from projections.rebuild.target import Target
    from projections.runtime import ProjectorApp


class Sender(Protocol):
    """What `cqrs send` needs from a client (`pipeline.client.CommandClient`, or a fake)."""

    def send_many(self, commands: Iterable[CommandEnvelope]) -> list[str]: ...

    def send_many_and_wait(
        self, commands: Iterable[CommandEnvelope], timeout: float
    ) -> list[CommandResult]: ...

    def close(self) -> None: ...


ClientFactory = Callable[[Config], Sender]
ReadSideFactory = Callable[[Config], Awaitable[ReadSide]]
ServicesFactory = Callable[[Config], Awaitable[Services]]
TargetFactory = Callable[[str, Config], "Target"]
ProcessorFactory = Callable[[ProcessorConfig], Processor]


def kafka_client(config: Config) -> Sender:
    """The real client, for the catalogue's topics."""
    return CommandClient(config.kafka.client_config(), config.catalogue)


def open_read_side(config: Config) -> Awaitable[ReadSide]:
    """The real read side: one PostgreSQL connection and the users search."""
    return compose.open_read_side(config)


def rebuild_target(projection: str, config: Config) -> Target:
    """The real target of `projection` (`postgres` or `search`)."""
    if projection == "postgres":
        from projections.rebuild.postgres import PostgresTarget

        return PostgresTarget.live(config.postgres, projector="postgres")
    from projections.rebuild.search import SearchTarget

    search: Target = SearchTarget.from_config(config.search, config.prefix)
    return search


class Bootstrap:
    """Settings (read once, on first use), the `Config` made of them, and the adapters' seams."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        command_client: ClientFactory = kafka_client,
        read_side: ReadSideFactory = open_read_side,
        services: ServicesFactory = compose.build_services,
        target: TargetFactory = rebuild_target,
        processor: ProcessorFactory = kafka_processor,
        role: Role | None = "admin",
    ) -> None:
        self._settings = settings
        self.role: Role | None = role
        """Whose credentials the settings carry (`Settings.for_role`); set before first use."""
        self._command_client = command_client
        self._read_side = read_side
        self._services = services
        self._target = target
        self._processor = processor

    @cached_property
    def settings(self) -> Settings:
        """The settings given, or else the environment's with `role`'s credentials, read here
        once."""
        return self._settings if self._settings is not None else Settings.for_role(self.role)

    def for_role(self, role: Role | None) -> Bootstrap:
        """This bootstrap with `role`'s credentials (itself when it is that role's, or was
        given its settings), the same seams."""
        if role == self.role or self._settings is not None:
            return self
        return Bootstrap(command_client=self._command_client, read_side=self._read_side,
                         services=self._services, target=self._target,
                         processor=self._processor, role=role)

    @cached_property
    def config(self) -> Config:
        """`Config.from_settings`; raises `InvalidTopicName` for an illegal prefix."""
        return Config.from_settings(self.settings)

    def command_client(self) -> Sender:
        return self._command_client(self.config)

    def open_read_side(self) -> Awaitable[ReadSide]:
        return self._read_side(self.config)

    def open_services(self) -> Awaitable[Services]:
        return self._services(self.config)

    def rebuild_target(self, projection: str) -> Target:
        return self._target(projection, self.config)

    def processor(self, config: ProcessorConfig) -> Processor:
        """The processor of `config` (`Config.processor` builds it from the settings)."""
        return self._processor(config)

    def projector_app(self, name: str, registry: CollectorRegistry | None = None) -> ProjectorApp:
        """Projector `name` as registered in `projections.registry`, from this config, its
        metrics on `registry` (default: a registry of its own)."""
        from projections.registry import projector_factory

        return projector_factory(name)(self.config.projections(), registry)
