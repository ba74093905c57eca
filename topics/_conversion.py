"""Domain events to and from event envelopes, upcast on the way in.

Event ids: the processor names the event at `version` of `stream_id` `"<stream_id>@<version>"`
(`event_id_for`), the same text as its record key. One writer per stream makes it unique, and it
is deterministic, so a retried transaction writes the same ids again.
"""

from __future__ import annotations

from datetime import datetime

from topics._envelopes import EventEnvelope, event_key
from topics._messages import Event
from topics._registry import UPCASTERS, event_spec
from topics._upcasting import Upcasters


def event_id_for(stream_id: str, version: int) -> str:
    """The id of the event at `version` of `stream_id` (see the module docstring)."""
    return event_key(stream_id, version)


def to_envelope(
    event: Event,
    stream_id: str,
    version: int,
    event_id: str,
    occurred_at: datetime,
    causation_id: str | None,
    correlation_id: str | None,
) -> EventEnvelope:
    """Wrap a domain event for the events topic, at its model's current schema version."""
    return EventEnvelope(
        event_id=event_id,
        type=type(event).__name__,
        schema_version=type(event).schema_version,
        stream_id=stream_id,
        version=version,
        data=event.model_dump(mode="json"),
        occurred_at=occurred_at,
        causation_id=causation_id,
        correlation_id=correlation_id,
    )


def from_envelope(envelope: EventEnvelope, upcasters: Upcasters = UPCASTERS) -> Event:
    """The domain event in `envelope`, upcast first; raises `UnknownMessageType`,
    `UpcastError`, or pydantic's `ValidationError` for data that does not fit."""
    spec = event_spec(envelope.type)
    current = upcasters.upcast(envelope, to_version=spec.model.schema_version)
    return spec.model.model_validate(current.data)
