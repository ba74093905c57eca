"""The pure search projector: user events folded onto whole user documents, idempotent by version.

`evolve_document` is the one rule of a user document (the fake and the Elasticsearch store both
reach it through `plan_batch`, called by `writes.apply_documents`). Contract (no I/O here):

- Only streams of aggregate type `user` are projected; every other event is *not applicable*.
- A document carries the stream version it reflects. For each stream, in delivery order, an event
  at `version <= document.version` is *already applied* (a redelivery) and skipped; the event at
  `document.version + 1` is applied; any higher version is a *gap* (events missing before it).
- A `UserForgotten` turns the document into a forgotten marker at any version (the stream's earlier
  events are erased, so no gap); every older event of the stream is then already applied, and a
  newer one is an impossible history.
- An event that cannot be applied (gap, unknown type, failed upcast or validation, an impossible
  history) is poison, and every later event of the same stream in the batch is parked behind it
  (reported as poison too) since applying them out of order would corrupt the document. The
  stream's events before the poison still count: the document is written up to the last good one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from topics import (
    USER_AGGREGATE,
    Event,
    EventEnvelope,
    InvalidHistory,
    InvalidStreamId,
    UnknownMessageType,
    UpcastError,
    UserCreated,
    UserDeactivated,
    UserEmailChanged,
    UserForgotten,
    UserNameChanged,
    UserReactivated,
    from_envelope,
    parse_stream_id,
)


class UserDocument(BaseModel):
    """One user as indexed for search; `version` is the stream version it reflects."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    name: str
    email: str
    active: bool
    created_at: AwareDatetime
    updated_at: AwareDatetime
    version: int
    forgotten: bool = False
    """A forgotten user's marker (no personal data: empty name and email), never a document of
    the users index: the store deletes the user's document and keeps the marker apart, so that
    no older event of the stream writes the document again (docs/erasure.md)."""
    lingering: bool = False
    """A marker read while the index still holds the user's document (a delete that failed,
    or a rebuild that indexed the user before the forget): the document is deleted again."""


def forgotten_marker(user_id: str, version: int, at: datetime) -> UserDocument:
    """The marker of user `user_id`, forgotten at `version`."""
    return UserDocument(user_id=user_id, name="", email="", active=False, created_at=at,
                        updated_at=at, version=version, forgotten=True)


@dataclass(frozen=True)
class RefusedEvent:
    """An event the fold will never be able to apply as it is (data, not an exception: the store
    raises `projections.runtime.PoisonEvent` for it, and it goes to the DLQ).

    `position` is its index in the sequence handed to `plan_batch`.
    """

    position: int
    envelope: EventEnvelope
    error: str
    reason: str


@dataclass
class StreamPlan:
    """What a batch does to one user document: the document to write and the events behind it."""

    user_id: str
    document: UserDocument | None
    already_applied: int = 0
    applied_envelopes: list[EventEnvelope] = field(default_factory=list)
    applied_positions: list[int] = field(default_factory=list)

    @property
    def applied(self) -> int:
        return len(self.applied_envelopes)


@dataclass
class BatchPlan:
    """A batch folded: at most one document to write per user, and the fate of each event."""

    streams: dict[str, StreamPlan] = field(default_factory=dict)
    not_applicable: int = 0
    poison: list[RefusedEvent] = field(default_factory=list)

    def writes(self) -> list[UserDocument]:
        """The documents changed by the batch (streams with at least one applied event)."""
        return [
            plan.document
            for plan in self.streams.values()
            if plan.applied and plan.document is not None
        ]

    def applied_envelopes(self) -> list[tuple[str, int, EventEnvelope]]:
        """(user id, position, event) of every event folded into a document to write."""
        return [
            (user_id, position, envelope)
            for user_id, plan in self.streams.items()
            for position, envelope in zip(
                plan.applied_positions, plan.applied_envelopes, strict=True
            )
        ]


class _Poison(Exception):
    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


def user_id_of(envelope: EventEnvelope) -> str | None:
    """The user id (document id) of a user-stream event, `None` for other streams."""
    try:
        aggregate_type, aggregate_id = parse_stream_id(envelope.stream_id)
    except InvalidStreamId:
        aggregate_type, _, aggregate_id = envelope.stream_id.partition("-")
    return aggregate_id if aggregate_type == USER_AGGREGATE else None


def user_ids(envelopes: Iterable[EventEnvelope]) -> list[str]:
    """The distinct document ids a batch touches, in first-seen order (for one `mget`)."""
    seen = {user_id: None for user_id in map(user_id_of, envelopes) if user_id is not None}
    return list(seen)


def apply_event(
    document: UserDocument | None, envelope: EventEnvelope, event: Event | None = None
) -> UserDocument:
    """`document` after the event in `envelope` (which must be at `document.version + 1`);
    `event` is the envelope's event already decoded (`topics.from_envelope`), if it was.

    Raises `_Poison` for anything that retrying cannot fix.
    """
    current_version = document.version if document else 0
    try:
        parse_stream_id(envelope.stream_id)
        if event is None:
            event = from_envelope(envelope)
    except (InvalidStreamId, UnknownMessageType, UpcastError, ValidationError) as error:
        raise _Poison(type(error).__name__, str(error).splitlines()[0]) from None
    # A forget follows no gap: the stream's earlier events are erased from the log.
    if envelope.version != current_version + 1 and not isinstance(event, UserForgotten):
        raise _Poison(
            "StreamGap",
            f"{envelope.stream_id}@{envelope.version} follows version {current_version}: "
            f"events {current_version + 1}..{envelope.version - 1} are missing",
        )
    return evolve_document(document, envelope, event)


def evolve_document(
    document: UserDocument | None, envelope: EventEnvelope, event: object
) -> UserDocument:
    """`document` (`None`: no user yet) once `event` (decoded from `envelope`) applied: the one
    rule of a user document. Raises `_Poison` for an impossible history (a second `UserCreated`,
    a change before it) or an event that is not a user event."""
    stamp = {"version": envelope.version, "updated_at": envelope.occurred_at}
    if document is not None and document.forgotten:
        raise _Poison(InvalidHistory.__name__, f"{envelope.type} after UserForgotten")
    if isinstance(event, UserForgotten):
        return forgotten_marker(user_id_of(envelope) or "", envelope.version,
                                envelope.occurred_at)
    if isinstance(event, UserCreated):
        if document is not None:
            raise _Poison(InvalidHistory.__name__, "UserCreated on an existing user")
        user_id = user_id_of(envelope) or ""
        return UserDocument(
            user_id=user_id,
            name=event.name,
            email=event.email,
            active=True,
            created_at=envelope.occurred_at,
            **stamp,
        )
    if document is None:
        raise _Poison(InvalidHistory.__name__, f"{envelope.type} before UserCreated")
    if isinstance(event, UserEmailChanged):
        return document.model_copy(update={"email": event.email, **stamp})
    if isinstance(event, UserNameChanged):
        return document.model_copy(update={"name": event.name, **stamp})
    if isinstance(event, UserDeactivated | UserReactivated):
        active = isinstance(event, UserReactivated)
        return document.model_copy(update={"active": active, **stamp})
    raise _Poison(UnknownMessageType.__name__, f"{envelope.type} is not a user event")


def plan_batch(
    envelopes: Sequence[EventEnvelope],
    current: Mapping[str, UserDocument | None],
    events: Sequence[Event] | None = None,
) -> BatchPlan:
    """Fold a batch, in delivery order, onto the `current` documents (by user id). Pure.
    `events`, when given, are the envelopes already decoded (same positions): not decoded again.
    """
    plan = BatchPlan()
    parked: set[str] = set()
    for position, envelope in enumerate(envelopes):
        user_id = user_id_of(envelope)
        if user_id is None:
            plan.not_applicable += 1
            continue
        stream = plan.streams.setdefault(user_id, StreamPlan(user_id, current.get(user_id)))
        if user_id in parked:
            plan.poison.append(
                RefusedEvent(
                    position,
                    envelope,
                    "Parked",
                    f"parked behind an earlier poison event of {envelope.stream_id}",
                )
            )
            continue
        if stream.document is not None and envelope.version <= stream.document.version:
            stream.already_applied += 1
            continue
        try:
            event = events[position] if events is not None else None
            stream.document = apply_event(stream.document, envelope, event)
        except _Poison as poison:
            parked.add(user_id)
            plan.poison.append(RefusedEvent(position, envelope, poison.error, poison.reason))
            continue
        stream.applied_envelopes.append(envelope)
        stream.applied_positions.append(position)
    return plan
