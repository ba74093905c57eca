"""`FakeSearchStore`: the search projector's store contract in memory, for tests.

It applies batches through `writes.apply_documents`, the path production runs, over
`FakeUserDocuments` (a dict with Elasticsearch's external-version rule: a write not above the
stored version is a conflict), and keeps checkpoints and blocked and parked records as the
tracking index does.
"""

from __future__ import annotations

from collections.abc import Sequence

from projections.fake_tracking import FakeTracking
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
        held = self.stored.get(user_id)
        return None if held is None or held.forgotten else held

    async def index_documents(self, documents: Sequence[UserDocument]) -> tuple[set[str], Rejected]:
        conflicted: set[str] = set()
        for document in documents:
            held = self.stored.get(document.user_id)
            if held is not None and held.version >= document.version:
                conflicted.add(document.user_id)
            else:
                self.stored[document.user_id] = document
        return conflicted, {}


class FakeSearchStore(FakeTracking):
    """Implements the runtime's `Store` like `SearchProjectorStore`, with `documents` exposed."""

    def __init__(self) -> None:
        super().__init__()
        self.documents = FakeUserDocuments()

    async def apply(self, batch: Batch) -> Applied:
        applied = await apply_documents(
            self.documents, [item.envelope for item in batch.items],
            [item.event for item in batch.items])
        self.track(batch, forward_only=True)
        return applied
