"""The store side of the operations tools: what `replay`, `lag` and `dlq retry` ask of a store.

`OperableStore` is a projector's store seen from outside the projector: read and move its
checkpoints, list what is blocked and parked, and release a blocked stream. Only used while the
projector is stopped for the writing calls (`set_checkpoints`, `release`): a running projector
keeps its own view of both in memory and would write over them.
"""

from __future__ import annotations

from typing import Protocol

from projections.config import ProjectionsConfig
from projections.operations.errors import OperationsError
from projections.registry import PROJECTORS
from projections.runtime.records import Applied, Item, SourceRecord

Position = tuple[str, int, int]


class OperableStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def checkpoints(self, topic: str) -> dict[int, int]: ...

    async def set_checkpoints(self, topic: str, offsets: dict[int, int]) -> None: ...

    async def blocked(self) -> dict[str, Position]: ...

    async def parked_records(self, stream_id: str | None = None) -> list[SourceRecord]: ...

    async def release(self, stream_id: str, items: list[Item]) -> Applied: ...


def open_store(name: str, config: ProjectionsConfig) -> OperableStore:
    """The store of projector `name`, built as its composition root builds it (not started)."""
    if name not in PROJECTORS:
        raise OperationsError(f"no projector {name!r}; known: {', '.join(sorted(PROJECTORS))}")
    if name == "postgres":
        from projections.postgres.store import PostgresStore

        return PostgresStore.live(config.postgres, projector=name)
    if name == "search":
        from projections.search.client import make_client
        from projections.search.index import IndexNames
        from projections.search.projector import SearchProjectorStore

        return SearchProjectorStore(make_client(config.search),
                                    IndexNames.for_prefix(config.prefix))
    raise OperationsError(f"projector {name!r} has no operations support yet")


def group_of(name: str, prefix: str) -> str:
    """The Faust app id, i.e. the consumer group, of projector `name` under topic `prefix`."""
    return f"{prefix}projector.{name}"
