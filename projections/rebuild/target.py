"""What a rebuild writes into: a `Target` (PostgreSQL schemas, Elasticsearch indices)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from projections.runtime.records import Store


class RebuildError(Exception):
    """A rebuild that cannot go on (nothing live, a model that is not ours, a failed swap)."""


@dataclass(frozen=True)
class Model:
    """A side model: `kind` is `rebuild` (being built), `retired` (swapped out) or `pit`
    (point in time, never swapped in); counts are `None` where the model has no such table."""

    name: str
    kind: str
    users: int | None
    orders: int | None = None


class Target(Protocol):
    """Where side models live and how one replaces the live model."""

    async def close(self) -> None: ...
    async def live_name(self) -> str: ...
    async def create(self, kind: str) -> str: ...
    def store(self, name: str) -> Store: ...
    async def models(self) -> list[Model]: ...
    async def drop(self, name: str) -> None: ...
    async def checkpoints(self, name: str, topic: str) -> dict[int, int]: ...

    async def swap(self, name: str, topic: str,
                   catch_up: Callable[[dict[int, int] | None], Awaitable[None]]) -> str:
        """Make `name` live atomically once it holds every event the live model holds
        (`catch_up(targets)` reads until those positions, `catch_up(None)` to the live end);
        returns the retired model's name."""
        ...
