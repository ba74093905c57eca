"""The search projector's tracking records beside its index: checkpoints, parked, blocked.

They live in a tracking index of their own (`state_index_for`). Elasticsearch has no
multi-document transaction, so a batch is not atomic here; what makes it safe is ordering plus
idempotence: user documents first (versioned, so rewriting them is harmless), then
parked/blocked records (ids are their Kafka positions, so rewriting is harmless), and the
checkpoints last, with `version_type=external` and version = offset so a checkpoint never moves
backwards. A crash between steps redelivers the batch, which then writes nothing new.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from elasticsearch import AsyncElasticsearch, BadRequestError, ConflictError

from projections.runtime.records import SourceRecord

STATE_MAPPINGS: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "kind": {"type": "keyword"},
        "topic": {"type": "keyword"},
        "partition": {"type": "integer"},
        "offset": {"type": "long"},
        "stream_id": {"type": "keyword"},
    },
}


def state_index_for(index: str) -> str:
    """The state index of concrete index `index` (a rebuilt generation has its own)."""
    return f"{index}-state"


async def ensure_state_index(client: AsyncElasticsearch, state_index: str) -> None:
    """Create the state index unless it exists (idempotent, safe to race)."""
    try:
        await client.indices.create(
            index=state_index,
            settings={"number_of_shards": 1, "auto_expand_replicas": "0-1"},
            mappings=STATE_MAPPINGS,
        )
    except BadRequestError as error:
        if error.error != "resource_already_exists_exception":
            raise


def record_operations(kind: str, records: Sequence[tuple[str, SourceRecord]]) -> list[Any]:
    """Bulk `index` operations keeping `records` (kind `parked` or `blocked`), id = position."""
    operations: list[Any] = []
    for stream_id, record in records:
        operations.append(
            {"index": {"_id": f"{kind}|{record.topic}|{record.partition}|{record.offset}"}}
        )
        operations.append(
            {
                "kind": kind,
                "stream_id": stream_id,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "key": _b64(record.key),
                "value": _b64(record.value),
                "headers": [_header_document(name, value) for name, value in record.headers],
            }
        )
    return operations


MAX_STATE_BULK_BYTES = 10 * 1024 * 1024
"""Bytes of one `_bulk` request to the state index. Parked and blocked records are kept whole
(base64), up to the events topic's 1,048,588 bytes each (about 1.4 MB as base64, plus headers),
so a batch of them in one request could pass Elasticsearch's `http.max_content_length`
(100 MB by default, answered 413) and stop the projector on that batch at every restart.
10 MB stays far below it and holds at least six of the largest records."""


def bulk_chunks(
    operations: Sequence[Any], max_bytes: int = MAX_STATE_BULK_BYTES
) -> list[list[str]]:
    """`operations` (action, source pairs) as NDJSON lines, cut between pairs into requests of
    at most `max_bytes` (a pair larger than that goes alone)."""
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for at in range(0, len(operations), 2):
        pair = [json.dumps(operation) for operation in operations[at:at + 2]]
        pair_size = sum(len(line) + 1 for line in pair)  # ASCII (json.dumps escapes), + "\n"
        if current and size + pair_size > max_bytes:
            chunks.append(current)
            current, size = [], 0
        current += pair
        size += pair_size
    if current:
        chunks.append(current)
    return chunks


def halves(lines: list[str]) -> tuple[list[str], list[str]]:
    """A request's lines cut in two between pairs (for a 413: too large for the cluster)."""
    middle = (len(lines) // 2) // 2 * 2 or 2
    return lines[:middle], lines[middle:]


def checkpoint_id(topic: str, partition: int) -> str:
    """The id of `topic[partition]`'s checkpoint document in a state index."""
    return f"checkpoint|{topic}|{partition}"


def checkpoint_operations(checkpoints: Mapping[tuple[str, int], int]) -> list[Any]:
    """Bulk operations moving each partition's checkpoint forward (never back: external version)."""
    operations: list[Any] = []
    for (topic, partition), offset in checkpoints.items():
        operations.append(
            {
                "index": {
                    "_id": checkpoint_id(topic, partition),
                    "version": offset,
                    "version_type": "external",
                }
            }
        )
        operations.append(
            {"kind": "checkpoint", "topic": topic, "partition": partition, "offset": offset}
        )
    return operations


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")


def _header_document(name: str, value: bytes) -> list[str | None]:
    """`[name, value as base64]`; a name that is not UTF-8 (read with `surrogateescape`,
    `projections.runtime.drain`) cannot be JSON text: it is kept as base64 in a third element
    and replaced in the first."""
    if name.isascii():
        return [name, _b64(value)]
    try:
        name.encode("utf-8")
        return [name, _b64(value)]
    except UnicodeEncodeError:
        raw = name.encode("utf-8", "surrogateescape")
        return [raw.decode("utf-8", "replace"), _b64(value), _b64(raw)]


def _header_of(kept: Sequence[Any]) -> tuple[str, bytes]:
    name = kept[0]
    if len(kept) > 2 and kept[2] is not None:
        name = (_unb64(kept[2]) or b"").decode("utf-8", "surrogateescape")
    return name, _unb64(kept[1]) or b""


def record_of(source: Mapping[str, Any]) -> SourceRecord:
    """A kept (parked or blocked) record as it was read from Kafka."""
    headers = tuple(_header_of(kept) for kept in source.get("headers") or ())
    return SourceRecord(source["topic"], source["partition"], source["offset"],
                        _unb64(source.get("key")), _unb64(source.get("value")), headers)


async def set_checkpoint_documents(
    client: AsyncElasticsearch, state_index: str, topic: str, offsets: Mapping[int, int]
) -> None:
    """Overwrite checkpoints, backwards too (for `replay`, projector stopped): delete, then write
    at external version = offset (0 for -1, "nothing read yet": the projector's write of offset
    0 then answers 409 and is ignored, which only means offset 0 is read again after a restart).
    Elasticsearch remembers a deleted document's version for `index.gc_deletes` (60 s) and
    refuses a lower one meanwhile, so the state index is set to forget at once (its only deletes
    are these) and the write is retried until the tombstone is pruned."""
    await client.indices.put_settings(index=state_index, settings={"index.gc_deletes": "0s"})
    for partition, offset in sorted(offsets.items()):
        doc_id = checkpoint_id(topic, partition)
        await client.options(ignore_status=404).delete(index=state_index, id=doc_id, refresh=True)
        document = {"kind": "checkpoint", "topic": topic, "partition": partition,
                    "offset": offset}
        for attempt in range(50):
            try:
                await client.index(index=state_index, id=doc_id, document=document,
                                   version=max(offset, 0), version_type="external",
                                   refresh=True)
                break
            except ConflictError:
                if attempt == 49:
                    raise
                await client.indices.refresh(index=state_index)
                await asyncio.sleep(0.1)


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)
