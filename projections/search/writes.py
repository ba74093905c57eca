"""A batch applied to a user-document store: fold it, refuse poison, write, count by fate.

`apply_documents` is the one path from a batch of events to user documents, run by production's
`SearchProjectorStore` over Elasticsearch and by `FakeSearchStore` over a dict, so the tests run
what production runs. Idempotent by version: a document is written whole, with the stream version
of its last event folded in, and a store keeps a write only above the version it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from projections.runtime.errors import PoisonEvent
from projections.runtime.records import Applied
from projections.search.documents import BatchPlan, RefusedEvent, UserDocument, plan_batch, user_ids
from projections.search.errors import UnprojectableEvent
from topics import Event, EventEnvelope

Rejected = dict[str, tuple[str, str]]
"""User id → (error, reason) of a document the store refused for its content."""


class UserDocuments(Protocol):
    """Where user documents live (Elasticsearch, or a dict in tests)."""

    async def get_documents(self, ids: Sequence[str]) -> dict[str, UserDocument | None]:
        """The stored documents of `ids` (`None` where there is none), realtime; a forgotten
        user's marker in place of its document (`lingering` when the document is still there)."""

    async def index_documents(
        self, documents: Sequence[UserDocument]
    ) -> tuple[set[str], Rejected]:
        """Write `documents` whole, each only if its version is above the stored one; returns
        the ids refused for their version (conflicts: already applied) and those refused for
        their content. Raises `SearchUnavailable` for a fault a retry may cure. A forgotten
        user's marker deletes its document first, and is kept only once that delete is done."""


@dataclass(frozen=True)
class WriteReport:
    """Every event of a batch lands in exactly one of the four buckets.

    `applied`: written to a document now. `already_applied`: the index already had that version or
    newer (redelivery, or a conflict from external versioning). `not_applicable`: not a user
    event. `poison`: could not be applied (and later events of its stream, parked behind it).
    """

    applied: int = 0
    already_applied: int = 0
    not_applicable: int = 0
    poison: tuple[RefusedEvent, ...] = ()


def report_of(plan: BatchPlan, conflicted: set[str], rejected: Rejected) -> WriteReport:
    """The report of `plan` once written: `conflicted` user ids were already at that version or
    newer; `rejected` ones were refused for their content, so their applied events are poison."""
    applied = already = 0
    poison = list(plan.poison)
    for user_id, stream in plan.streams.items():
        already += stream.already_applied
        if user_id in conflicted:
            already += stream.applied
        elif user_id not in rejected:
            applied += stream.applied
    for envelope_user, position, envelope in plan.applied_envelopes():
        if envelope_user in rejected:
            error, reason = rejected[envelope_user]
            poison.append(RefusedEvent(position, envelope, error, reason))
    return WriteReport(applied, already, plan.not_applicable, tuple(poison))


async def apply_documents(
    documents: UserDocuments, envelopes: Sequence[EventEnvelope],
    events: Sequence[Event] | None = None,
) -> Applied:
    """Apply `envelopes` (a batch in delivery order; `events`: the same, already decoded, if
    they are) to `documents`: one read, one write. Poison found while folding (a gap, an
    impossible history) raises `PoisonEvent` at the first one before anything is written; a
    document refused for its content blames the last event folded into it, after the batch's
    other documents are written (harmless: applied again, they are already applied)."""
    current = await documents.get_documents(user_ids(envelopes))
    plan = plan_batch(envelopes, current, events)
    if plan.poison:
        first = min(plan.poison, key=lambda refused: refused.position)
        raise PoisonEvent(first.position, UnprojectableEvent(f"{first.error}: {first.reason}"))
    writes = plan.writes()
    planned = {document.user_id for document in writes}
    writes += [held for held in current.values()  # a forgotten user's document left behind
               if held is not None and held.lingering and held.user_id not in planned]
    conflicted, rejected = await documents.index_documents(writes) if writes else (set(), {})
    report = report_of(plan, conflicted, rejected)
    if report.poison:
        last = max(report.poison, key=lambda refused: refused.position)
        raise PoisonEvent(last.position, UnprojectableEvent(f"{last.error}: {last.reason}"))
    return Applied(report.applied, report.already_applied + report.not_applicable)
