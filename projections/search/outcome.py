"""What one `apply_batch` did: counts by fate, and the poison events for the DLQ."""

from __future__ import annotations

from dataclasses import dataclass

from projections.search.documents import BatchPlan, PoisonEvent


@dataclass(frozen=True)
class BatchOutcome:
    """Every event of a batch lands in exactly one of the four buckets.

    `applied`: written to a document now. `already_applied`: the index already had that version or
    newer (redelivery, or a 409 from external versioning). `not_applicable`: not a user event.
    `poison`: could not be applied (and later events of its stream, parked behind it).
    """

    applied: int = 0
    already_applied: int = 0
    not_applicable: int = 0
    poison: tuple[PoisonEvent, ...] = ()

    @property
    def total(self) -> int:
        return self.applied + self.already_applied + self.not_applicable + len(self.poison)


def outcome_of(
    plan: BatchPlan,
    conflicted: frozenset[str] = frozenset(),
    rejected: dict[str, tuple[str, str]] | None = None,
) -> BatchOutcome:
    """The outcome of `plan` once written: `conflicted` user ids answered 409 (already applied);
    `rejected` user ids failed deterministically (error, reason), so their applied events are
    poison."""
    rejected = rejected or {}
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
            poison.append(PoisonEvent(position, envelope, error, reason))
    return BatchOutcome(applied, already, plan.not_applicable, tuple(poison))
