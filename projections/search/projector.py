"""The search projector as a runtime `Store`: user documents, then parked records, then checkpoints.

Contract with `projections.runtime` (see its docstring): `apply` is idempotent by version and
raises `TransientError` (retried) or `PoisonEvent` (dead-lettered). It is not atomic (Elasticsearch
has no multi-document transaction) but ordered and idempotent (`tracking`): a failed or repeated
batch changes nothing a redelivery would not. The documents go through `writes.apply_documents`
(the path the fake runs too): poison found while folding (a gap, an impossible history) is raised
before anything is written; a document Elasticsearch refuses for its content (400) is blamed on
the last event folded into it, and the other documents of that bulk are already written, which is
harmless: the runtime re-applies the batch and they answer 409 (counted as skipped). Order events
are skipped (not applicable).

Nothing here waits for a refresh (`refresh="wait_for"` would hold a batch for up to the state
index's refresh interval): every read of the state index (`checkpoints`, `parked_streams`,
`blocked`, `parked_records`) refreshes it first, so whatever a batch wrote before a crash or a
stop is found by the next start and by the operations tools.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any, cast

from elasticsearch import ApiError, AsyncElasticsearch, ConnectionError, ConnectionTimeout

from projections.config import DEFAULT_REFRESH_INTERVAL
from projections.runtime.errors import TransientError
from projections.runtime.records import Applied, Batch, Item, SourceRecord
from projections.search.errors import SearchError, SearchUnavailable, StateWriteRefused
from projections.search.index import IndexNames, alias_target, create_index, ensure_index
from projections.search.store import (
    WRITE_BLOCK,
    ElasticsearchUserStore,
    Refresh,
    ensure_forgotten_index,
)
from projections.search.tracking import (
    bulk_chunks,
    checkpoint_operations,
    ensure_state_index,
    halves,
    record_of,
    record_operations,
    set_checkpoint_documents,
    state_index_for,
)
from projections.search.writes import apply_documents

logger = logging.getLogger("projections.search")


class SearchProjectorStore:
    """`projections.runtime.Store` over the users alias and its state index; with `index`, over
    that concrete index instead (created if missing; a rebuild's target, never the alias).
    `refresh_interval` is put on the users index at start (created with it, or changed to it);
    `refresh` is the per-request refresh of every write (tests only: it costs a refresh each)."""

    def __init__(
        self, client: AsyncElasticsearch, names: IndexNames, *, refresh: Refresh = False,
        index: str | None = None, refresh_interval: str = DEFAULT_REFRESH_INTERVAL,
    ) -> None:
        self._client = client
        self._names = names
        self._refresh = refresh
        self._target = index
        self._refresh_interval = refresh_interval
        self._users = self._store(index or names.alias)
        self._state_index: str | None = None

    def _store(self, index: str) -> ElasticsearchUserStore:
        return ElasticsearchUserStore(self._client, index, refresh=self._refresh,
                                      forgotten_index=self._names.forgotten)

    @property
    def documents(self) -> ElasticsearchUserStore:
        """The user documents of the index resolved at start (or followed since)."""
        return self._users

    @property
    def state_index(self) -> str:
        if self._state_index is None:
            raise RuntimeError("SearchProjectorStore.start() was not called")
        return self._state_index

    async def start(self) -> None:
        async with _transient("start"):
            if self._target is None:
                index = await ensure_index(self._client, self._names, self._refresh_interval)
            else:
                index = self._target
                await create_index(self._client, index, self._refresh_interval)
            self._state_index = state_index_for(index)
            # The concrete index, not the alias: a batch never straddles a rebuild's swap.
            self._users = self._store(index)
            await ensure_state_index(self._client, self._state_index)
            await ensure_forgotten_index(self._client, self._names.forgotten)

    async def close(self) -> None:
        await self._client.close()

    async def checkpoints(self, topic: str) -> dict[int, int]:
        async with _transient("checkpoints"):
            await self._client.indices.refresh(index=self.state_index)
            hits = await self._state_search({"term": {"kind": "checkpoint"}}, topic)
        return {hit["partition"]: hit["offset"] for hit in hits}

    async def parked_streams(self) -> set[str]:
        async with _transient("parked_streams"):
            await self._client.indices.refresh(index=self.state_index)
            hits = await self._state_search({"term": {"kind": "blocked"}}, None)
        return {hit["stream_id"] for hit in hits}

    async def apply(self, batch: Batch) -> Applied:
        """Apply `batch` to the index resolved at start; after a transient fault (such as the
        write block a rebuild sets before it moves the alias), follow the alias if it moved."""
        try:
            return await self._apply_to_index(batch)
        except TransientError:
            await self._follow_alias()
            raise

    async def _follow_alias(self) -> None:
        if self._target is not None:
            return
        with contextlib.suppress(ApiError, ConnectionError, ConnectionTimeout, SearchError):
            index = await alias_target(self._client, self._names)
            if index is not None and state_index_for(index) != self._state_index:
                logger.warning("search projector follows the alias %s to %s",
                               self._names.alias, index)
                self._users = self._store(index)
                self._state_index = state_index_for(index)

    async def _apply_to_index(self, batch: Batch) -> Applied:
        async with _transient("apply"):
            applied = await apply_documents(
                self._users, [item.envelope for item in batch.items],
                [item.event for item in batch.items])
            records = record_operations("parked", batch.parked) + record_operations(
                "blocked", batch.blocked
            )
            if records:
                await self._bulk(records, refresh=self._refresh)
            if batch.released:
                await self._unblock(batch.released)
            if batch.checkpoints:
                await self._bulk(checkpoint_operations(batch.checkpoints), refresh=self._refresh)
        return applied

    # --- Operations (`projections.operations`: replay, lag, dlq retry; projector stopped) ----

    async def set_checkpoints(self, topic: str, offsets: dict[int, int]) -> None:
        async with _transient("set_checkpoints"):
            await set_checkpoint_documents(self._client, self.state_index, topic, offsets)

    async def blocked(self) -> dict[str, tuple[str, int, int]]:
        async with _transient("blocked"):
            await self._client.indices.refresh(index=self.state_index)
            hits = await self._state_search({"term": {"kind": "blocked"}}, None)
        return {hit["stream_id"]: (hit["topic"], hit["partition"], hit["offset"]) for hit in hits}

    async def parked_records(self, stream_id: str | None = None) -> list[SourceRecord]:
        query: dict[str, Any] = {"term": {"kind": "parked"}}
        if stream_id is not None:
            query = {"bool": {"filter": [query, {"term": {"stream_id": stream_id}}]}}
        async with _transient("parked_records"):
            await self._client.indices.refresh(index=self.state_index)
            hits = await self._state_search(query, None)
        records = [record_of(hit) for hit in hits]
        return sorted(records, key=lambda r: (r.topic, r.partition, r.offset))

    async def release(self, stream_id: str, items: list[Item]) -> Applied:
        """Apply `items` (versioned, idempotent), then forget the stream's parked and blocked
        records; a crash in between leaves it blocked, and a second release changes nothing."""
        applied = await self.apply(Batch(items))
        async with _transient("release"):
            await self._unblock([stream_id])
        return applied

    async def _unblock(self, stream_ids: Sequence[str]) -> None:
        """Delete the streams' parked and blocked records: found by a search (refreshed first:
        a batch may have parked some a moment ago), deleted by id in bulk, until none is left.
        (Not `_delete_by_query`: it needs the reindex module, which a cluster may not have.)"""
        query = {"bool": {"filter": [{"terms": {"kind": ["parked", "blocked"]}},
                                     {"terms": {"stream_id": list(stream_ids)}}]}}
        while True:
            await self._client.indices.refresh(index=self.state_index)
            response = await self._client.search(
                index=self.state_index, query=query, size=10_000, source=False)
            ids = [hit["_id"] for hit in response.body["hits"]["hits"]]
            if not ids:
                return
            await self._client.bulk(index=self.state_index, refresh=True,
                                    operations=[{"delete": {"_id": found}} for found in ids])

    async def _bulk(self, operations: list[Any], refresh: Refresh) -> None:
        """Write the state `operations` in requests of at most `MAX_STATE_BULK_BYTES`; a request
        the cluster still finds too large (413: a lower `http.max_content_length`) is split in
        two and sent again, down to one record. Transient faults raise as such (the batch is
        retried); any other refusal is `StateWriteRefused`: the projector's own bookkeeping, no
        event's fault, so never a dead letter."""
        pending = bulk_chunks(operations)
        while pending:
            lines = pending.pop(0)
            try:
                response = await self._client.bulk(
                    index=self.state_index, operations=cast(Any, lines), refresh=refresh)
            except ApiError as error:
                if _transient_api_error(error):
                    raise
                if error.status_code == 413 and len(lines) > 2:
                    pending[:0] = halves(lines)
                    continue
                raise StateWriteRefused(
                    f"state index {self.state_index} refused a bulk of "
                    f"{sum(len(line) + 1 for line in lines)} bytes ({len(lines) // 2} "
                    f"record(s)): {error.status_code} {error.error}") from error
            for item in response.body["items"]:
                result = item["index"]
                status = int(result["status"])
                if status < 300 or status == 409:
                    continue
                kind = str((result.get("error") or {}).get("type", status))
                if status in (408, 429) or status >= 500 or kind == WRITE_BLOCK:
                    raise SearchUnavailable(f"state write failed: {result.get('error')}")
                raise StateWriteRefused(f"state write refused: {result.get('error')}")

    async def _state_search(self, query: dict[str, Any], topic: str | None) -> list[Any]:
        filters = [query] + ([{"term": {"topic": topic}}] if topic is not None else [])
        response = await self._client.search(
            index=self.state_index, query={"bool": {"filter": filters}}, size=10_000
        )
        return [hit["_source"] for hit in response.body["hits"]["hits"]]


def _transient_api_error(error: ApiError) -> bool:
    return (error.status_code in (408, 429) or error.status_code >= 500
            or error.error == WRITE_BLOCK)


class _transient:
    """Maps Elasticsearch's transient faults (and `SearchUnavailable`) to `TransientError`."""

    def __init__(self, what: str) -> None:
        self._what = what

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, error: Any, trace: Any) -> None:
        if isinstance(error, SearchUnavailable | ConnectionError | ConnectionTimeout):
            raise TransientError(f"search {self._what}: {error}") from error
        if isinstance(error, ApiError) and _transient_api_error(error):
            raise TransientError(f"search {self._what}: {error}") from error
