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
from projections.search.errors import SearchUnavailable
from projections.search.writes import Rejected, apply_documents


class FakeUserDocuments:
    """`writes.UserDocuments` in a dict; never refuses a document for its content. Forgotten
    users' markers are kept apart from the documents, as the Elasticsearch store keeps them in
    an index of their own; `fail_deletes` makes the next deletes fail transiently."""

    def __init__(self) -> None:
        self.stored: dict[str, UserDocument] = {}
        self.markers: dict[str, UserDocument] = {}
        self.fail_deletes = 0

    async def get_documents(self, ids: Sequence[str]) -> dict[str, UserDocument | None]:
        found: dict[str, UserDocument | None] = {}
        for user_id in ids:
            marker, held = self.markers.get(user_id), self.stored.get(user_id)
            found[user_id] = (held if marker is None
                              else marker.model_copy(update={"lingering": held is not None}))
        return found

    async def get_document(self, user_id: str) -> UserDocument | None:
        return None if user_id in self.markers else self.stored.get(user_id)

    async def index_documents(self, documents: Sequence[UserDocument]) -> tuple[set[str], Rejected]:
        conflicted: set[str] = set()
        forgotten = [document for document in documents if document.forgotten]
        if forgotten and self.fail_deletes > 0:
            self.fail_deletes -= 1
            raise SearchUnavailable("injected: the deletes failed")
        for document in documents:
            held = self.stored.get(document.user_id)
            if document.forgotten:
                self.stored.pop(document.user_id, None)
            elif held is not None and held.version >= document.version:
                conflicted.add(document.user_id)
            else:
                self.stored[document.user_id] = document
        for marker in forgotten:  # once the deletes are done
            known = self.markers.get(marker.user_id)
            if known is not None and known.version >= marker.version:
                conflicted.add(marker.user_id)
            else:
                self.markers[marker.user_id] = marker.model_copy(update={"lingering": False})
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
