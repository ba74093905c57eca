"""The pure search projector: user events folded onto whole documents, idempotent by version."""

from __future__ import annotations

import datetime as dt

from projections.search.documents import UserDocument, plan_batch, user_ids
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


def envelope(stream_id: str, version: int, event: Event) -> EventEnvelope:
    return to_envelope(
        event,
        stream_id,
        version,
        f"{stream_id}@{version}",
        T0 + dt.timedelta(minutes=version),
        None,
        None,
    )


CREATED = envelope("user-u1", 1, UserCreated(email="ada@example.com", name="Ada"))


def fold(*events: EventEnvelope, current: UserDocument | None = None) -> UserDocument | None:
    plan = plan_batch(list(events), {"u1": current})
    return plan.streams["u1"].document


def test_created_makes_a_whole_document() -> None:
    assert fold(CREATED) == UserDocument(
        user_id="u1",
        name="Ada",
        email="ada@example.com",
        active=True,
        created_at=T0 + dt.timedelta(minutes=1),
        updated_at=T0 + dt.timedelta(minutes=1),
        version=1,
    )


def test_partial_events_change_only_their_field_and_stamp_version() -> None:
    document = fold(
        CREATED,
        envelope("user-u1", 2, UserNameChanged(name="Ada L")),
        envelope("user-u1", 3, UserEmailChanged(email="ada@l.org")),
        envelope("user-u1", 4, UserDeactivated(reason="left")),
    )
    assert document is not None
    assert (document.name, document.email, document.active) == ("Ada L", "ada@l.org", False)
    assert document.version == 4
    assert document.created_at == T0 + dt.timedelta(minutes=1)
    assert document.updated_at == T0 + dt.timedelta(minutes=4)


def test_partial_event_applies_onto_the_stored_document() -> None:
    stored = fold(CREATED, envelope("user-u1", 2, UserDeactivated()))
    document = fold(envelope("user-u1", 3, UserReactivated()), current=stored)
    assert document is not None
    assert document.active
    assert document.version == 3


def test_redelivered_events_count_as_already_applied() -> None:
    stored = fold(CREATED)
    plan = plan_batch([CREATED, CREATED], {"u1": stored})
    assert plan.streams["u1"].already_applied == 2
    assert plan.writes() == []


def test_older_version_after_a_newer_one_is_ignored() -> None:
    renamed = envelope("user-u1", 2, UserNameChanged(name="Ada L"))
    plan = plan_batch([CREATED, renamed, CREATED], {})
    assert plan.streams["u1"].applied == 2
    assert plan.streams["u1"].already_applied == 1
    assert [document.name for document in plan.writes()] == ["Ada L"]


def test_order_events_are_not_applicable() -> None:
    order = CREATED.model_copy(
        update={"stream_id": "order-o1", "type": "OrderCreated", "data": {"total": 100}}
    )
    plan = plan_batch([order, CREATED], {})
    assert plan.not_applicable == 1
    assert user_ids([order, CREATED]) == ["u1"]


def test_a_gap_is_poison_and_parks_the_rest_of_its_stream() -> None:
    later = envelope("user-u1", 3, UserNameChanged(name="X"))
    after = envelope("user-u1", 4, UserNameChanged(name="Y"))
    other = envelope("user-u2", 1, UserCreated(email="b@example.com", name="Bea"))
    plan = plan_batch([CREATED, later, other, after], {})
    assert [(poison.envelope.version, poison.error) for poison in plan.poison] == [
        (3, "StreamGap"),
        (4, "Parked"),
    ]
    assert sorted(document.user_id for document in plan.writes()) == ["u1", "u2"]
    assert plan.streams["u1"].document is not None
    assert plan.streams["u1"].document.version == 1


def test_partial_event_without_a_document_is_poison() -> None:
    plan = plan_batch([envelope("user-u1", 1, UserNameChanged(name="X"))], {})
    assert [poison.error for poison in plan.poison] == ["InvalidHistory"]
    assert plan.writes() == []


def test_unknown_and_invalid_user_events_are_poison() -> None:
    unknown = CREATED.model_copy(update={"type": "UserTeleported"})
    invalid = CREATED.model_copy(update={"data": {"email": 42}})
    for bad in (unknown, invalid):
        plan = plan_batch([bad], {})
        assert len(plan.poison) == 1, bad
        assert plan.writes() == []


def test_old_schema_version_is_upcast() -> None:
    v1 = CREATED.model_copy(
        update={"schema_version": 1, "data": {"email": "ada@example.com", "full_name": "Ada"}}
    )
    document = fold(v1)
    assert document is not None
    assert document.name == "Ada"
