"""Projection idempotence: redelivery and any stream-order-preserving interleaving, any batching,
give the same documents as applying each stream once, in order. Through `apply_documents`, the
path the search projector runs, over the in-memory documents."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.search.documents import UserDocument
from projections.search.fake import FakeUserDocuments
from projections.search.writes import apply_documents
from topics import (
    Event,
    EventEnvelope,
    UserCreated,
    UserDeactivated,
    UserEmailChanged,
    UserNameChanged,
    UserReactivated,
    to_envelope,
)

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
NAMES = st.sampled_from(["Ada", "Bea", "Cy", "Dee"])
EMAILS = st.sampled_from(["a@example.com", "b@example.com", "c@example.org"])


@st.composite
def user_history(draw: st.DrawFn, user_id: str) -> list[EventEnvelope]:
    """A valid history of one user (as the processor would write it)."""
    events: list[Event] = [UserCreated(email=draw(EMAILS), name=draw(NAMES))]
    active = True
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["name", "email", "toggle"]))
        if kind == "name" and active:
            events.append(UserNameChanged(name=draw(NAMES)))
        elif kind == "email" and active:
            events.append(UserEmailChanged(email=draw(EMAILS)))
        else:
            events.append(UserReactivated() if not active else UserDeactivated())
            active = not active
    stream_id = f"user-{user_id}"
    return [
        to_envelope(
            event,
            stream_id,
            version,
            f"{stream_id}@{version}",
            T0 + dt.timedelta(seconds=version),
            None,
            None,
        )
        for version, event in enumerate(events, start=1)
    ]


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[list[EventEnvelope]], list[list[EventEnvelope]]]:
    """(histories, batches): an interleaved log, delivered with rewinds, cut into batches."""
    count = draw(st.integers(1, 4))
    histories = [draw(user_history(f"u{index}")) for index in range(count)]
    cursors = [0] * count
    log: list[EventEnvelope] = []
    while any(cursor < len(history) for cursor, history in zip(cursors, histories, strict=True)):
        open_streams = [i for i in range(count) if cursors[i] < len(histories[i])]
        chosen = draw(st.sampled_from(open_streams))
        log.append(histories[chosen][cursors[chosen]])
        cursors[chosen] += 1
    delivered: list[EventEnvelope] = []
    position = 0
    for _ in range(draw(st.integers(0, 3))):  # at-least-once: read on, then rewind
        read_to = draw(st.integers(position, len(log)))
        delivered += log[position:read_to]
        position = draw(st.integers(0, read_to))
    delivered += log[position:]
    cuts = sorted(draw(st.lists(st.integers(0, len(delivered)), max_size=5)))
    bounds = [0, *cuts, len(delivered)]
    batches = [delivered[start:end] for start, end in itertools.pairwise(bounds)]
    return histories, batches


def expected(history: list[EventEnvelope]) -> UserDocument | None:
    documents = FakeUserDocuments()
    result = asyncio.run(apply_documents(documents, history))
    assert result.applied == len(history)
    return documents.stored[history[0].stream_id.removeprefix("user-")]


@settings(max_examples=150, deadline=None)
@given(deliveries())
def test_any_delivery_gives_the_documents_of_the_streams(
    case: tuple[list[list[EventEnvelope]], list[list[EventEnvelope]]],
) -> None:
    histories, batches = case
    documents = FakeUserDocuments()
    applied = 0
    for batch in batches:
        result = asyncio.run(apply_documents(documents, batch))  # raises on poison
        assert result.applied + result.skipped == len(batch)
        applied += result.applied
    assert applied == sum(len(history) for history in histories)
    for history in histories:
        user_id = history[0].stream_id.removeprefix("user-")
        assert documents.stored[user_id] == expected(history)
