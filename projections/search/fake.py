"""`FakeSearchStore`: the search projector's store contract in memory, for tests.

It applies batches through `writes.apply_documents`, the path production runs, over
`FakeUserDocuments` (a dict with Elasticsearch's external-version rule: a write not above the
stored version is a conflict), and keeps checkpoints and blocked and parked records as the
tracking index does.
"""

from __future__ import annotations

from collections.abc import Sequence

from projections.runtime.records import Applied, Batch
from projections.search.documents import UserDocument
from projections.search.writes import Rejected, apply_documents


class FakeUserDocuments:
    """`writes.UserDocuments` in a dict; never refuses a document for its content."""

    def __init__(self) -> None:
        self.stored: dict[str, UserDocument] = {}

    async def get_documents(self, ids: Sequence[str]) -> dict[str, UserDocument | None]:
        return {user_id: self.stored.get(user_id) for user_id in ids}

    async def get_document(self, user_id: str) -> UserDocument | None:
        return self.stored.get(user_id)

    async def index_documents(self, documents: Sequence[UserDocument]) -> tuple[set[str], Rejected]:
        conflicted: set[str] = set()
        for document in documents:
            held = self.stored.get(document.user_id)
            if held is not None and held.version >= document.version:
                conflicted.add(document.user_id)
            else:
                self.stored[document.user_id] = document
        return conflicted, {}


class FakeSearchStore:
    """Implements the runtime's `Store` like `SearchProjectorStore`, with `documents` exposed."""

    def __init__(self) -> None:
        self.documents = FakeUserDocuments()
        self.checkpoint_rows: dict[tuple[str, int], int] = {}
        self.parked: dict[tuple[str, int, int], str] = {}
        self.blocked: dict[str, tuple[str, int, int]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def checkpoints(self, topic: str) -> dict[int, int]:
        return {p: o for (t, p), o in self.checkpoint_rows.items() if t == topic}

    async def parked_streams(self) -> set[str]:
        return set(self.blocked)

    async def apply(self, batch: Batch) -> Applied:
        applied = await apply_documents(
            self.documents, [item.envelope for item in batch.items],
            [item.event for item in batch.items])
        for stream_id, record in batch.parked:
            self.parked.setdefault((record.topic, record.partition, record.offset), stream_id)
        for stream_id, record in batch.blocked:
            self.blocked.setdefault(stream_id, (record.topic, record.partition, record.offset))
        for where, offset in batch.checkpoints.items():
            self.checkpoint_rows[where] = max(offset, self.checkpoint_rows.get(where, offset))
        return applied
