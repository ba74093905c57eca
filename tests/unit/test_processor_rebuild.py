"""A stream with an unreadable snapshot is folded again from its events (no Kafka here)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.domain import users
from pipeline.processor.rebuild import RebuildFailed, fold_stream
from topics import Event, EventEnvelope, UserCreated, UserNameChanged, event_id_for, to_envelope

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def envelope(event: Event, version: int, causation_id: str) -> EventEnvelope:
    event_id = event_id_for("user-u1", version)
    return to_envelope(event, "user-u1", version, event_id, NOW, causation_id, None)


def history() -> list[EventEnvelope]:
    created = UserCreated(email="a@example.com", name="Ann")
    renamed = UserNameChanged(name="Anna")
    return [envelope(created, 1, "c1"), envelope(renamed, 2, "c2")]


def test_fold_stream_gives_the_state_version_and_duplicate_window() -> None:
    stream = fold_stream("user-u1", reversed(history()))
    assert (stream.aggregate_type, stream.version) == ("user", 2)
    assert isinstance(stream.state, users.UserState)
    assert stream.state.name == "Anna"
    assert stream.recent_command_ids == ("c1", "c2")


@pytest.mark.parametrize("events", [[], history()[1:]])
def test_missing_events_do_not_rebuild(events: list[EventEnvelope]) -> None:
    with pytest.raises(RebuildFailed):
        fold_stream("user-u1", events)
