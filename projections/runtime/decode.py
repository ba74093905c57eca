"""Record → `Item`, or the deterministic reason it can never become one."""

from __future__ import annotations

from pydantic import ValidationError

from pipeline.contracts import from_envelope
from pipeline.domain.errors import DomainError
from projections.runtime.records import Item, SourceRecord
from topics.envelopes import decode_event, parse_event_key
from topics.errors import TopicsError

POISON_ERRORS = (TopicsError, DomainError, ValidationError, ValueError)
"""Errors that decoding the same bytes would raise again: never retried, dead-lettered."""


def decode(record: SourceRecord) -> Item:
    """Decode and upcast; raises one of `POISON_ERRORS` (`ValueError` for a null value)."""
    if record.value is None:
        raise ValueError("tombstone (null value) on the events topic")
    envelope = decode_event(record.value)
    event = from_envelope(envelope)
    return Item(record=record, envelope=envelope, event=event)


def stream_of(record: SourceRecord) -> str | None:
    """Best effort: the stream id of a record that failed to decode (header, then key)."""
    from_header = record.header("stream_id")
    if from_header:
        return from_header
    if record.key is None:
        return None
    try:
        stream_id, _ = parse_event_key(record.key.decode("utf-8"))
    except (UnicodeDecodeError, TopicsError):
        return None
    return stream_id
