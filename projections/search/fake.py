"""An in-memory user store with the same interface and semantics as `ElasticsearchUserStore`."""

from __future__ import annotations

from collections.abc import Sequence

from projections.search.documents import UserDocument, plan_batch, user_ids
from projections.search.outcome import BatchOutcome, outcome_of
from topics.envelopes import EventEnvelope


class FakeUserStore:
    """Documents in a dict; a write with a version not above the stored one is a 409 conflict."""

    def __init__(self) -> None:
        self.documents: dict[str, UserDocument] = {}

    async def apply_batch(self, events: Sequence[EventEnvelope]) -> BatchOutcome:
        """Apply a batch (events in delivery order); safe to call again with the same batch."""
        current = await self.get_documents(user_ids(events))
        plan = plan_batch(events, current)
        conflicted: set[str] = set()
        for document in plan.writes():
            stored = self.documents.get(document.user_id)
            if stored is not None and stored.version >= document.version:
                conflicted.add(document.user_id)
            else:
                self.documents[document.user_id] = document
        return outcome_of(plan, frozenset(conflicted))

    async def get_documents(self, ids: Sequence[str]) -> dict[str, UserDocument | None]:
        return {user_id: self.documents.get(user_id) for user_id in ids}

    async def get_document(self, user_id: str) -> UserDocument | None:
        return self.documents.get(user_id)
