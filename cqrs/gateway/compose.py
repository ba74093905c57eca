"""The gateway's (and the query CLI's) adapters, built once from the `Config` of `cqrs.bootstrap`.

`build_services` makes the real adapters: a small pool of `CommandClient`s (a client is not
thread-safe and its result consumer serves one wait at a time, so concurrent requests each borrow
one), a `PostgresStore` as the read model, and a `UserSearch` over the users alias. Tests hand
`cqrs.bootstrap.Bootstrap` factories returning fakes behind the same protocols.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from confluent_kafka.admin import AdminClient
from elasticsearch import AsyncElasticsearch, NotFoundError

from cqrs.config import Config
from pipeline.client import CommandClient
from projections.postgres.models import Order, User, UserStats
from projections.postgres.store import PostgresStore
from projections.queries import ReadModel
from projections.search import IndexNames, UserSearch, UserSearchResult
from projections.search.client import make_client
from topics import CommandEnvelope, CommandResult

COMMAND_CLIENTS = 4
"""How many commands (sends or waits) the gateway has in flight at once; more queue up."""
READ_CONNECTIONS = 4
"""PostgreSQL connections of the gateway's read model (each query holds one while it runs)."""

T = TypeVar("T")


class CommandSender(Protocol):
    """What the gateway needs from `pipeline.client.CommandClient` (blocking calls)."""

    def send(self, command: CommandEnvelope) -> str: ...

    def send_and_wait(self, command: CommandEnvelope, timeout: float) -> CommandResult: ...

    def close(self) -> None: ...


class Searcher(Protocol):
    """What the gateway needs from `projections.search.UserSearch`."""

    async def search_users(
        self, text: str, limit: int = 10, offset: int = 0, *, active_only: bool = False
    ) -> UserSearchResult: ...


HealthCheck = Callable[[], Awaitable[None]]
"""Returns when a service answers, raises (anything) when it does not."""


class Pool(Generic[T]):
    """Lends each caller a member of its own; callers beyond the pool's size wait their turn."""

    def __init__(self, members: list[T]) -> None:
        self.members = members
        self._idle: asyncio.Queue[T] | None = None

    @asynccontextmanager
    async def borrow(self) -> AsyncIterator[T]:
        if self._idle is None:  # made on first use, inside the serving event loop
            self._idle = asyncio.Queue()
            for member in self.members:
                self._idle.put_nowait(member)
        member = await self._idle.get()
        try:
            yield member
        finally:
            self._idle.put_nowait(member)


class CommandPool(Pool[CommandSender]):
    """Command clients: one per blocking call in flight (a client is not thread-safe)."""

    def close(self) -> None:
        for client in self.members:
            client.close()


class PooledReadModel:
    """A `ReadModel` over several `PostgresStore`s: a store holds one connection, whose
    transactions must not interleave between concurrent requests."""

    def __init__(self, stores: list[PostgresStore]) -> None:
        self._pool = Pool(stores)

    async def user(self, user_id: str) -> User | None:
        async with self._pool.borrow() as store:
            return await store.user(user_id)

    async def forgotten(self, user_id: str) -> int | None:
        async with self._pool.borrow() as store:
            return await store.forgotten(user_id)

    async def order(self, order_id: str) -> Order | None:
        async with self._pool.borrow() as store:
            return await store.order(order_id)

    async def orders_for_user(self, user_id: str) -> list[Order]:
        async with self._pool.borrow() as store:
            return await store.orders_for_user(user_id)

    async def user_stats(self, now: datetime) -> UserStats:
        async with self._pool.borrow() as store:
            return await store.user_stats(now)

    async def close(self) -> None:
        for store in self._pool.members:
            await store.close()


@dataclass
class ReadSide:
    """The query side: the PostgreSQL read model and the users search, and how to close them."""

    read_model: ReadModel
    search: Searcher
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for close in self.closers:
            await close()


@dataclass
class Services:
    """Everything the gateway's routes use; built once per app (lifespan), closed at shutdown."""

    commands: CommandPool
    read: ReadSide
    health: dict[str, HealthCheck] = field(default_factory=dict)

    async def close(self) -> None:
        await asyncio.to_thread(self.commands.close)
        await self.read.close()


def _search_client(config: Config, request_timeout: float) -> AsyncElasticsearch:
    return make_client(config.search, request_timeout)


async def open_read_side(config: Config, connections: int = 1) -> ReadSide:
    """The real read side for `config`: `PostgresStore.live`, in the prefix's schema (up to
    `connections` of them, connected lazily), and `UserSearch` on the prefix's users alias."""
    store = PooledReadModel([PostgresStore.live(config.postgres) for _ in range(connections)])
    search_client = _search_client(config, request_timeout=10)
    alias = IndexNames.for_prefix(config.prefix).alias
    return ReadSide(store, UserSearch(search_client, alias), [store.close, search_client.close])


async def build_services(config: Config) -> Services:
    """The real services. Kafka clients read metadata on construction: done in a thread."""
    catalogue = config.catalogue
    kafka_config = config.kafka.client_config()
    clients: list[CommandSender] = []
    for _ in range(COMMAND_CLIENTS):
        clients.append(await asyncio.to_thread(CommandClient, kafka_config, catalogue))
    read = await open_read_side(config, READ_CONNECTIONS)
    search_client = _search_client(config, request_timeout=5)
    read.closers.append(search_client.close)
    admin = AdminClient(kafka_config)

    async def kafka() -> None:
        metadata = await asyncio.to_thread(admin.list_topics, catalogue.commands.name, 5)
        topic = metadata.topics.get(catalogue.commands.name)
        if topic is None or topic.error is not None:
            raise RuntimeError(f"topic {catalogue.commands.name} is missing")

    async def postgres() -> None:
        await read.read_model.user_stats(datetime.now(UTC))

    alias = IndexNames.for_prefix(config.prefix).alias

    async def elasticsearch() -> None:
        # A count on the alias, which the query role may read: `_cluster/health` (and `GET /`)
        # need a cluster privilege that role does not hold. An alias not made yet (no projector
        # has started) is no failure; one this role may not read is (with security on,
        # `ignore_unavailable` would hide that refusal as a missing index).
        try:
            await search_client.count(index=alias)
        except NotFoundError:
            return

    return Services(
        CommandPool(clients), read,
        {"kafka": kafka, "postgres": postgres, "elasticsearch": elasticsearch},
    )
