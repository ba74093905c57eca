"""The user documents in Elasticsearch: one `mget` and one `bulk` per batch, by external version.

Read-modify-write (`writes.apply_documents`): the batch's user documents are read in one `mget`,
the batch is folded onto them in memory (`documents.evolve_document`, through `plan_batch`), and
the changed documents are written whole in one `bulk` with `version_type=external` and `version`
= the stream version of the last event folded in. Elasticsearch keeps a write only if its
version is higher than the stored one, so replays, redeliveries and a concurrent older writer can
never move a document backwards; a 409 means the index already holds that version or newer and is
counted as already applied.

Faults: connection errors, timeouts, 429 and 5xx (for the whole request or any bulk item) raise
`SearchUnavailable` and the runtime retries the same batch; items rejected for their content
(400: mapping, parsing) are poison. Nothing is refreshed unless the caller asks (`refresh`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, cast

from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    ConnectionError,
    ConnectionTimeout,
)

from projections.search.documents import UserDocument, forgotten_marker
from projections.search.errors import SearchUnavailable
from projections.search.writes import Rejected

Refresh = bool | Literal["wait_for"]
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
WRITE_BLOCK = "cluster_block_exception"
"""A write block (`index.blocks.write`, set by a rebuild's swap on the index it retires) is
retried like a transient fault: the projector follows the alias to the new index meanwhile."""


def _transient_status(status: int) -> bool:
    return status in _TRANSIENT_STATUS or status >= 500


FORGOTTEN_MAPPINGS = {
    "dynamic": "strict",
    "properties": {"user_id": {"type": "keyword"}, "version": {"type": "long"},
                   "forgotten_at": {"type": "date"}},
}
"""The forgotten users' markers: an id, a version and a time, nothing of the person."""


async def ensure_forgotten_index(client: AsyncElasticsearch, index: str) -> None:
    """Create the forgotten users' index unless it exists (idempotent, safe to race)."""
    try:
        await client.indices.create(
            index=index, settings={"number_of_shards": 1, "auto_expand_replicas": "0-1"},
            mappings=FORGOTTEN_MAPPINGS)
    except ApiError as error:
        if error.error != "resource_already_exists_exception":
            raise


class ElasticsearchUserStore:
    """`writes.UserDocuments` in `index` (normally the alias) through an async client.

    A forgotten user (docs/erasure.md) has no document: its document is deleted (whatever its
    version) and then its marker kept in `forgotten_index`,
    shared by every generation of the users index (a rebuild reads it too), which
    `get_documents` reads with the documents. A marker read beside a document of this index is
    `lingering`, and the document is deleted again. Without a `forgotten_index` (read-only
    uses), markers are not read."""

    def __init__(self, client: AsyncElasticsearch, index: str, *, refresh: Refresh = False,
                 forgotten_index: str | None = None) -> None:
        self._client = client
        self._index = index
        self._refresh = refresh
        self._forgotten = forgotten_index

    @property
    def index(self) -> str:
        return self._index

    async def get_documents(self, ids: Sequence[str]) -> dict[str, UserDocument | None]:
        """The stored documents of `ids` (`None` where there is none), read in one `mget`."""
        if not ids:
            return {}
        found: dict[str, UserDocument | None] = {user_id: None for user_id in ids}
        for item in await self._mget(self._index, ids):
            found[item["_id"]] = UserDocument.model_validate(item["_source"])
        if self._forgotten is not None:
            for item in await self._mget(self._forgotten, ids):
                marker = item["_source"]
                held = found[item["_id"]]
                found[item["_id"]] = forgotten_marker(
                    marker["user_id"], marker["version"],
                    datetime.fromisoformat(marker["forgotten_at"])).model_copy(
                        update={"lingering": held is not None})
        return found

    async def _mget(self, index: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The documents of `ids` found in `index` (realtime)."""
        try:
            response = await self._client.mget(index=index, ids=list(ids), realtime=True)
        except (ConnectionError, ConnectionTimeout) as error:
            raise SearchUnavailable(f"mget failed: {error}") from error
        except ApiError as error:
            if _transient_status(error.status_code):
                raise SearchUnavailable(f"mget answered {error.status_code}") from error
            raise
        return [item for item in response.body["docs"] if item.get("found")]

    async def get_document(self, user_id: str) -> UserDocument | None:
        """One stored document (realtime: sees writes not yet refreshed); `None` for a
        forgotten user."""
        found = (await self.get_documents([user_id]))[user_id]
        return None if found is None or found.forgotten else found

    async def index_documents(self, documents: Sequence[UserDocument]) -> tuple[set[str], Rejected]:
        """Write `documents` in one `bulk` (external versions): the ids answered 409, and those
        refused for their content; `SearchUnavailable` for a transient fault of any item."""
        # Lines serialized here (pydantic's serializer, not one `json.dumps` per line in the
        # client): the client's NDJSON serializer sends `str` lines as they are.
        operations: list[str] = []
        markers: list[str] = []
        for document in documents:
            action = {"_id": document.user_id, "version": document.version,
                      "version_type": "external"}
            if document.forgotten:
                # Whatever version it holds: nothing of the user may stay (its tombstone, one
                # version past it, still refuses an older writer for `index.gc_deletes`).
                operations.append(json.dumps({"delete": {"_id": document.user_id}}))
                markers.extend(self._marker_lines(document, action))
                continue
            operations.append(json.dumps({"index": action}))
            operations.append(document.model_dump_json(exclude={"forgotten", "lingering"}))
        conflicted, rejected = await self._bulk(operations)
        if markers:  # only once the deletes are done: a marker hides what is left behind
            kept, refused = await self._bulk(markers)
            conflicted |= kept
            rejected.update(refused)
        return conflicted, rejected

    async def _bulk(self, operations: list[str]) -> tuple[set[str], Rejected]:
        try:
            response = await self._client.bulk(
                index=self._index, operations=cast(Any, operations), refresh=self._refresh
            )
        except (ConnectionError, ConnectionTimeout) as error:
            raise SearchUnavailable(f"bulk failed: {error}") from error
        except ApiError as error:
            if _transient_status(error.status_code) or error.error == WRITE_BLOCK:
                raise SearchUnavailable(f"bulk answered {error.status_code}") from error
            raise
        return _classify_items(response.body["items"])

    def _marker_lines(self, marker: UserDocument, action: dict[str, Any]) -> list[str]:
        """Bulk lines keeping a forgotten user's marker (by external version)."""
        if self._forgotten is None:
            raise RuntimeError("this store has no forgotten users' index to keep markers in")
        source = {"user_id": marker.user_id, "version": marker.version,
                  "forgotten_at": marker.updated_at.isoformat()}
        return [json.dumps({"index": {**action, "_index": self._forgotten}}), json.dumps(source)]


def _classify_items(items: Sequence[dict[str, Any]]) -> tuple[set[str], Rejected]:
    """Split bulk item results into 409 conflicts and poison rejections; raise on transient.
    A forget's `delete` of a document that is not there (404) is fine; its marker's `index`
    (in a bulk of its own) answers for the forget's version."""
    conflicted: set[str] = set()
    rejected: Rejected = {}
    transient: list[str] = []
    for item in items:
        operation, result = next(iter(item.items()))
        status = int(result["status"])
        if status < 300 or (operation == "delete" and status == 404):
            continue
        if status == 409:
            conflicted.add(result["_id"])
            continue
        error = result.get("error", {})
        kind, reason = str(error.get("type", status)), str(error.get("reason", ""))
        if _transient_status(status) or kind == WRITE_BLOCK:
            transient.append(f"{result['_id']}: {status} {kind}")
        else:
            rejected[result["_id"]] = (kind, reason)
    if transient:
        raise SearchUnavailable(f"bulk items failed transiently: {', '.join(transient[:5])}")
    return conflicted, rejected
