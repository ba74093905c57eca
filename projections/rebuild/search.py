"""The Elasticsearch target: `<alias>-v<N+1>` filled beside the live index, then the alias moved.

Generations: `<alias>-v<N>` is a full model, `<alias>-v<N>-pit` a point-in-time one; each has its
state index (`state_index_for`) with its own checkpoints. The swap moves the alias in one
`_aliases` request (`swap_alias`), so readers see the whole old index or the whole new one,
refreshed first so that search sees every document at once.

The live projector writes to the concrete index it resolved at start, not through the alias. The
swap sets a write block on that (live) index first: from then on the live projector's batches
fail, are retried as transient faults, and on each failure it re-reads the alias. With the live
index frozen, the rebuild reads to the end offsets measured after the block (every event the live
index holds is before them), refreshes the new index and moves the alias. The live projector's
retried batch then goes to the new index and its state index; the events in it that the rebuild
already applied are skipped by the external versions. So readers see the old index (frozen), then
the new one holding at least as much, never a document going backwards. The old index stays
write-blocked (it is retired); a failed swap lifts the block.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from functools import partial

from elasticsearch import AsyncElasticsearch, NotFoundError

from projections.config import DEFAULT_REFRESH_INTERVAL, SearchConfig
from projections.rebuild.target import Model, RebuildError
from projections.search.client import make_client
from projections.search.index import IndexNames, alias_target, swap_alias
from projections.search.projector import SearchProjectorStore
from projections.search.tracking import state_index_for


class SearchTarget:
    """Generations of the users index of one topic prefix."""

    def __init__(self, client_factory: Callable[[], AsyncElasticsearch],
                 names: IndexNames, refresh_interval: str = DEFAULT_REFRESH_INTERVAL) -> None:
        self._new_client = client_factory
        self._client = client_factory()
        self._names = names
        self._refresh_interval = refresh_interval  # put on each generation it creates
        self._model = re.compile(rf"^{re.escape(names.alias)}-v(\d+)(-pit)?$")

    @classmethod
    def from_config(cls, search: SearchConfig, prefix: str) -> SearchTarget:
        """The generations of `prefix`'s users index on the cluster `search` names."""
        return cls(partial(make_client, search), IndexNames.for_prefix(prefix),
                   search.refresh_interval)

    async def close(self) -> None:
        await self._client.close()

    async def live_name(self) -> str:
        live = await alias_target(self._client, self._names)
        if live is None:
            raise RebuildError(f"no alias {self._names.alias!r}: nothing live to replace")
        return live

    async def _indices(self) -> list[str]:
        response = await self._client.indices.get(index=self._names.pattern,
                                                  allow_no_indices=True)
        return sorted(name for name in response.body if self._model.match(name))

    async def create(self, kind: str) -> str:
        generations = [int(self._model.match(n)[1]) for n in await self._indices()]  # type: ignore[index]
        name = self._names.versioned(1 + max(generations, default=0))
        return f"{name}-pit" if kind == "pit" else name

    def store(self, name: str) -> SearchProjectorStore:
        return SearchProjectorStore(self._new_client(), self._names, index=name,
                                    refresh_interval=self._refresh_interval)

    async def models(self) -> list[Model]:
        live = await alias_target(self._client, self._names)
        found = []
        for name in await self._indices():
            if name == live:
                continue
            match = self._model.match(name)
            assert match is not None
            newer = live is None or int(match[1]) > int(self._model.match(live)[1])  # type: ignore[index]
            kind = "pit" if match[2] else ("rebuild" if newer else "retired")
            count = await self._client.count(index=name)
            found.append(Model(name, kind, int(count.body["count"])))
        return found

    async def drop(self, name: str) -> None:
        if not self._model.match(name):
            raise RebuildError(f"{name!r} is not a generation of {self._names.alias!r}")
        if name == await alias_target(self._client, self._names):
            raise RebuildError(f"{name!r} is the live index")
        await self._client.indices.delete(
            index=f"{name},{state_index_for(name)}", ignore_unavailable=True)

    async def checkpoints(self, name: str, topic: str) -> dict[int, int]:
        state = state_index_for(name)
        try:
            await self._client.indices.refresh(index=state)
            response = await self._client.search(index=state, size=10_000, query={"bool": {
                "filter": [{"term": {"kind": "checkpoint"}}, {"term": {"topic": topic}}]}})
        except NotFoundError:
            return {}
        return {hit["_source"]["partition"]: hit["_source"]["offset"]
                for hit in response.body["hits"]["hits"]}

    async def swap(self, name: str, topic: str,
                   catch_up: Callable[[dict[int, int] | None], Awaitable[None]]) -> str:
        """Freeze the live index, read to the live end, move the alias (see above)."""
        live = await self.live_name()
        await self._write_block(live, True)
        try:
            await catch_up(None)
            await self._client.indices.refresh(index=name)
            await swap_alias(self._client, self._names, name)
        except BaseException:
            await self._write_block(live, False)
            raise
        return live

    async def _write_block(self, index: str, blocked: bool) -> None:
        await self._client.indices.put_settings(
            index=index, settings={"index.blocks.write": blocked})
