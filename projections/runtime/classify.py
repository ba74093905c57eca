"""The one classification of an events-topic record: `Item`, `Skip` or `Poison`, never an exception.

Every projector (and replay, rebuild, `dlq retry`) sees a record through `classify`, so they all
agree on its fate whoever wrote it. Pure and deterministic: the same record always classifies the
same way, so nothing here is ever retried.

Record (whoever wrote it) → outcome (error class in the dead letter):

- a header name that is not UTF-8 (the fetch reads it with `surrogateescape`,
  `projections.runtime.drain`) → `Poison` (`UnreadableHeaders`), whatever else the record is;
- null value (a tombstone: how a stream's keys are erased) → `Skip("tombstone")`;
- over the size limit, not UTF-8 JSON, not an event envelope → `Poison` (`TooLarge`, `NotJson`,
  `InvalidEnvelope`);
- a stream id `parse_stream_id` refuses (`user-ü1`, NUL, no `-`) → `Poison` (`InvalidStreamId`);
- no key, or a key other than `<stream_id>@<version>` of the value → `Poison` (`KeyMismatch`);
- a `type`, `stream_id`, `version` or `schema_version` header that disagrees with the value (or
  is not its UTF-8) → `Poison` (`HeaderMismatch`); absent headers are fine;
- not on `partition_for(stream_id, partitions)` of the events topic → `Poison`
  (`WrongPartition`: its stream has another writer's order);
- unknown event type, future schema version, data the event model refuses → `Poison`
  (`UnknownMessageType`, `UpcastError`, `ValidationError`);
- anything else decoding raises → `Poison` (its class);
- otherwise → `Item` (decoded, upcast).

`Poison.stream_id` is the stream the record names, validated by `parse_stream_id`: the value's
when it decodes with a valid one, else the key's, else the `stream_id` header's; `None` when none
is valid (the record is dead-lettered and nothing is parked).
"""

from __future__ import annotations

from dataclasses import dataclass

from projections.runtime.errors import (
    HeaderMismatch,
    KeyMismatch,
    UnreadableHeaders,
    WrongPartition,
)
from projections.runtime.records import Item, SourceRecord
from topics import (
    EventEnvelope,
    decode_event,
    from_envelope,
    parse_event_key,
    parse_stream_id,
    partition_for,
)

ROUTING_HEADERS = ("type", "stream_id", "version", "schema_version")
"""Headers the processor repeats from the value; where present, each must agree with it."""


@dataclass(frozen=True)
class Skip:
    """A record with nothing to apply and nothing wrong (counted as skipped)."""

    reason: str


@dataclass(frozen=True)
class Poison:
    """A record that can never be applied: dead-lettered, and `stream_id` (if any) parked."""

    error: BaseException
    stream_id: str | None


Classified = Item | Skip | Poison


def classify(record: SourceRecord, partitions: int | None = None) -> Classified:
    """The fate of `record` read from an events topic of `partitions` partitions (`None`: the
    partition is not checked). Never raises: whatever decoding raises is the record's poison."""
    unreadable = unreadable_headers(record)
    if unreadable is not None:
        return Poison(unreadable, stream_of(record))
    if record.value is None:
        return Skip("tombstone")
    try:
        return _classify(record, record.value, partitions)
    except Exception as error:  # decoding is deterministic: the same bytes would raise again
        return Poison(error, stream_of(record))


def decode(record: SourceRecord, partitions: int | None = None) -> Item:
    """`classify`, raising the poison's error (`ValueError` for a tombstone)."""
    found = classify(record, partitions)
    if isinstance(found, Poison):
        raise found.error
    if isinstance(found, Skip):
        raise ValueError(f"{found.reason}: nothing to apply")
    return found


def named_stream(record: SourceRecord) -> str | None:
    """The valid stream a record names, as `classify` sees it (the stream its poison parks)."""
    found = classify(record)
    return None if isinstance(found, Skip) else found.stream_id


def valid_stream_id(candidate: str | None) -> str | None:
    """`candidate` if `parse_stream_id` accepts it, else `None`."""
    if candidate is None:
        return None
    try:
        parse_stream_id(candidate)
    except Exception:
        return None
    return candidate


def stream_of(record: SourceRecord) -> str | None:
    """The valid stream id a record names by its key or, failing that, its `stream_id` header
    (for records whose value does not decode); `None` if neither is a valid stream id."""
    if record.key is not None:
        try:
            stream_id, _ = parse_event_key(record.key.decode("utf-8"))
        except Exception:
            stream_id = None
        if stream_id is not None:
            return stream_id
    for name, value in reversed(record.headers):
        if name == "stream_id":
            try:
                return valid_stream_id(value.decode("utf-8"))
            except Exception:
                return None
    return None


def unreadable_headers(record: SourceRecord) -> UnreadableHeaders | None:
    """The fault of the first header name that is not UTF-8 (lone surrogates), if any."""
    for name, _ in record.headers:
        if name.isascii():
            continue
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            try:
                raw = name.encode("utf-8", "surrogateescape")  # the bytes as read
            except UnicodeEncodeError:
                raw = name.encode("utf-8", "backslashreplace")
            return UnreadableHeaders(f"header name {raw[:200]!r} is not UTF-8")
    return None


def _classify(record: SourceRecord, value: bytes, partitions: int | None) -> Classified:
    envelope = decode_event(value)
    try:
        parse_stream_id(envelope.stream_id)
    except Exception as error:
        return Poison(error, stream_of(record))
    unfit = _unfit(record, envelope, partitions)
    if unfit is not None:
        return Poison(unfit, envelope.stream_id)
    try:
        event = from_envelope(envelope)
    except Exception as error:
        return Poison(error, envelope.stream_id)
    return Item(record=record, envelope=envelope, event=event)


def _unfit(record: SourceRecord, envelope: EventEnvelope,
           partitions: int | None) -> Exception | None:
    expected_key = f"{envelope.stream_id}@{envelope.version}"
    if record.key is None or record.key != expected_key.encode():
        shown = None if record.key is None else record.key[:200]
        return KeyMismatch(f"key {shown!r} is not {expected_key!r}")
    expected = {"type": envelope.type, "stream_id": envelope.stream_id,
                "version": str(envelope.version), "schema_version": str(envelope.schema_version)}
    for name, raw in record.headers:
        if name in expected and raw != expected[name].encode():
            return HeaderMismatch(f"header {name}={raw[:200]!r} disagrees with the value's "
                                  f"{expected[name]!r}")
    if partitions is not None:
        wanted = partition_for(envelope.stream_id, partitions)
        if record.partition != wanted:
            return WrongPartition(f"{envelope.stream_id} belongs on partition {wanted} of "
                                  f"{partitions}, read from {record.partition}")
    return None
