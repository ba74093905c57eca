"""The search projector's state writes (parked, blocked, checkpoints) over a stub client that
answers 413 past a `http.max_content_length`, as Elasticsearch does: no batch of parked records
can make a request too large, a lowered limit splits requests, and what cannot be split is
refused as the store's own fault (`StateWriteRefused`), never retried as transient."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError

from projections.runtime.errors import TransientError
from projections.runtime.records import Batch, SourceRecord
from projections.search.errors import StateWriteRefused
from projections.search.index import IndexNames
from projections.search.projector import SearchProjectorStore
from projections.search.tracking import MAX_STATE_BULK_BYTES, record_of

ES_MAX_CONTENT_LENGTH = 100 * 1024 * 1024
RECORD_LIMIT = 1024 * 1024 + 12


def api_error(status: int, kind: str) -> ApiError:
    meta = ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(),
                           duration=0.0, node=NodeConfig("http", "localhost", 9200))
    return ApiError(kind, meta=meta, body={"error": {"type": kind}})


class StubElasticsearch:
    """`bulk` as Elasticsearch answers it: 413 for a body over `max_content_length`."""

    def __init__(self, max_content_length: int = ES_MAX_CONTENT_LENGTH,
                 item_status: int = 201) -> None:
        self.max_content_length = max_content_length
        self.item_status = item_status
        self.requests: list[int] = []
        self.documents: dict[str, dict[str, Any]] = {}

    async def bulk(self, *, index: str, operations: list[Any], refresh: Any) -> Any:
        lines = [line if isinstance(line, str) else json.dumps(line) for line in operations]
        size = sum(len(line.encode()) + 1 for line in lines)
        if size > self.max_content_length:
            raise api_error(413, "content_too_long")
        self.requests.append(size)
        items = []
        for action, source in zip(lines[::2], lines[1::2], strict=True):
            doc_id = json.loads(action)["index"]["_id"]
            self.documents[doc_id] = json.loads(source)
            items.append({"index": {"_id": doc_id, "status": self.item_status,
                                    "error": {"type": "x"} if self.item_status >= 300 else None}})
        return SimpleNamespace(body={"items": items})


def store_over(client: StubElasticsearch) -> SearchProjectorStore:
    store = SearchProjectorStore(client, IndexNames("users"),  # type: ignore[arg-type]
                                 index="users-v1")
    store._state_index = "users-v1-state"
    return store


def parked_batch(count: int, size: int) -> Batch:
    records = [SourceRecord("t.events", 0, offset, f"user-a@{offset}".encode(),
                            bytes([offset % 256]) * size, (("h", b"x"),))
               for offset in range(count)]
    return Batch([], parked=[("user-a", r) for r in records[1:]],
                 blocked=[("user-a", records[0])], checkpoints={("t.events", 0): count - 1})


def test_75_parked_records_of_the_topic_max_size_are_written_in_bounded_requests() -> None:
    client = StubElasticsearch()
    batch = parked_batch(75, RECORD_LIMIT - 200)
    asyncio.run(store_over(client).apply(batch))
    assert max(client.requests) <= MAX_STATE_BULK_BYTES < ES_MAX_CONTENT_LENGTH
    assert len(client.documents) == 75 + 1  # 74 parked, 1 blocked, the checkpoint
    kept = record_of(client.documents["parked|t.events|0|74"])
    assert kept == batch.parked[-1][1]  # whole, not a cut copy
    assert client.documents["checkpoint|t.events|0"]["offset"] == 74


def test_a_413_splits_the_request_until_it_fits() -> None:
    client = StubElasticsearch(max_content_length=3 * 1024 * 1024)
    asyncio.run(store_over(client).apply(parked_batch(20, 1024 * 1024)))
    assert len(client.documents) == 21
    assert max(client.requests) <= client.max_content_length


def test_a_record_too_large_alone_is_the_stores_refusal_not_a_transient_fault() -> None:
    client = StubElasticsearch(max_content_length=1024 * 1024)
    with pytest.raises(StateWriteRefused, match="413"):
        asyncio.run(store_over(client).apply(parked_batch(3, 1024 * 1024)))


@pytest.mark.parametrize(("status", "raised"), [(400, StateWriteRefused), (403, StateWriteRefused),
                                                (429, TransientError), (503, TransientError)])
def test_a_refused_state_item_is_classified(status: int, raised: type[Exception]) -> None:
    client = StubElasticsearch(item_status=status)
    with pytest.raises(raised):
        asyncio.run(store_over(client).apply(parked_batch(2, 10)))
