"""`dlq`: list, show and retry dead-lettered records of a projector or of the processor.

Retry of a projector's record releases its stream *through the store*, with the projector
stopped: the dead-lettered event and the records parked behind it are decoded and applied in
stream-version order, and the stream is unblocked, in one store transaction (PostgreSQL) or
in that order with idempotent writes (search). Ordering per stream holds because every later
event of a blocked stream up to the checkpoint is parked, and events past the checkpoint are
read by the projector only after it restarts, when the stream is no longer blocked. If the
cause is not fixed the event is still poison and nothing changes. The store is the marker: a
record whose stream is no longer blocked by it shows `released`, and retrying it is a no-op.

Dead letters are bounded copies (`topics.deadletter`): a record too large for its DLQ is kept as a
prefix (or, as a pointer, not at all), with `dlq.truncated` naming what was cut and the original's
size and sha256. A letter whose value is not `dlq.original.value.bytes` long is treated as cut
too, with or without that header. Retrying a cut copy, for a projector or the processor alike,
reads the original from its source position and checks its sha256 (and its key against the
copy's prefix); if the source topic no longer holds it (retention, compaction) or holds another
record there, the retry answers `not retried: …` and changes nothing; a cut copy is never
re-applied or re-produced.
Headers are read by their current names (`dlq.source.topic`, `dlq.error.class`, ...) and by the
names older versions wrote (`source_topic`, `error_class`, ...), so older dead letters still list
and retry.

Retry of a commands DLQ record re-produces the original command (key, value, its own headers,
plus `dlq.retry.of`) to its partition of `<p>commands`; the processor decides it again, and its
command id makes a command accepted before answer `duplicate`. That is no marker: `list` shows
no status for the commands DLQ, and retrying twice sends it twice (harmless for accepted
commands, decided again otherwise).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from projections.operations.errors import InvalidPosition, OperationsError
from projections.operations.kafka import KafkaOps
from projections.operations.stores import OperableStore
from projections.runtime.classify import decode, named_stream, stream_of
from projections.runtime.errors import PoisonEvent
from projections.runtime.records import Item, SourceRecord
from topics import deadletter

SOURCE = deadletter.SOURCE_HEADERS
LEGACY_SOURCE = ("source_topic", "source_partition", "source_offset")
"""The source headers older versions wrote (the processor's DLQ, before `topics.deadletter`)."""
LEGACY_ERROR = ("error_class", "error_message")
DLQ_HEADERS = deadletter.OWN_HEADERS | {*LEGACY_SOURCE, *LEGACY_ERROR}
"""Headers a dead letter adds; the rest are the original record's own."""


@dataclass(frozen=True)
class DlqEntry:
    """One dead-lettered record: where it is, where it came from, why, and its status."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    source: tuple[str, int, int] | None
    stream_id: str | None
    status: str = "-"
    truncated: tuple[str, ...] = ()
    """What the dead letter's copy cuts (`value`, `key`, `headers`); empty: a whole copy."""

    def header(self, name: str) -> str | None:
        found = [value for key, value in self.headers if key == name]
        return found[-1].decode("utf-8", errors="replace") if found else None

    @property
    def error(self) -> str:
        kind = self.header(deadletter.ERROR_CLASS) or self.header("error_class") or "?"
        message = self.header(deadletter.ERROR_MESSAGE) or self.header("error_message") or ""
        return f"{kind}: {message}"

    def original(self) -> SourceRecord:
        """The record as it was read (DLQ headers removed); only whole copies (`truncated`
        empty) are the original: see `original_record` for the others."""
        if self.source is None:
            raise OperationsError(f"DLQ record {self.partition}:{self.offset} names no source")
        if self.truncated:
            raise OperationsError(
                f"DLQ record {self.partition}:{self.offset} is a truncated copy "
                f"({', '.join(self.truncated)} cut): read the original at its source")
        own = tuple((k, v) for k, v in self.headers if k not in DLQ_HEADERS)
        return SourceRecord(*self.source, self.key, self.value, own)

    def as_json(self) -> dict[str, Any]:
        return {"partition": self.partition, "offset": self.offset, "key": _text(self.key),
                "source": list(self.source) if self.source else None,
                "stream_id": self.stream_id, "error": self.error, "status": self.status,
                "headers": {k: _text(v) for k, v in self.headers}, "value": pretty(self.value)}


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def pretty(value: bytes | None) -> Any:
    """The value as JSON when it parses, else as text."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return _text(value)


def entry_of(message: Message) -> DlqEntry:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = tuple((str(k), v.encode() if isinstance(v, str) else bytes(v or b""))
                    for k, v in pairs)
    record = SourceRecord("", 0, 0, _bytes(message.key()), _bytes(message.value()), headers)
    names = SOURCE if record.header(SOURCE[0]) else LEGACY_SOURCE
    found = [record.header(name) for name in names]
    source = None
    if found[0] and found[1] and found[2] and found[1].isdigit() and found[2].isdigit():
        source = (found[0], int(found[1]), int(found[2]))
    cut = tuple(part for part in (record.header(deadletter.TRUNCATED) or "").split(",") if part)
    if "value" not in cut and _value_differs(record):
        cut = (*cut, "value")
    own = SourceRecord("", 0, 0, record.key, record.value,
                       tuple((k, v) for k, v in headers if k not in DLQ_HEADERS))
    stream_id = stream_of(own) if cut else named_stream(own)
    return DlqEntry(message.partition() or 0, message.offset() or 0, _bytes(message.key()),
                    _bytes(message.value()), headers, source, stream_id, truncated=cut)


def _value_differs(letter: SourceRecord) -> bool:
    """Whether the letter's value is not the original's whole (`dlq.original.value.bytes` names
    another size, or the letter has no value where the original had one): a cut copy or a pointer
    even if no `dlq.truncated` header says so."""
    size = letter.header(deadletter.ORIGINAL_VALUE_BYTES)
    if size is None:
        return False
    held = None if letter.value is None else len(letter.value)
    return not size.isdigit() or int(size) != held


def _bytes(raw: str | bytes | None) -> bytes | None:
    return raw.encode() if isinstance(raw, str) else raw


def parse_position(text: str) -> tuple[int, int]:
    """`"P:O"` (a DLQ record's partition and offset) → `(P, O)`."""
    partition, sep, offset = text.partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise InvalidPosition(f"{text!r} is not PARTITION:OFFSET of a DLQ record (see `dlq list`)")
    return int(partition), int(offset)


def entries(kafka: KafkaOps, topic: str, limit: int | None = None) -> list[DlqEntry]:
    """The DLQ's records, partition by partition, at most `limit` in all."""
    found: list[DlqEntry] = []
    for partition in kafka.partitions(topic):
        left = None if limit is None else limit - len(found)
        if left == 0:
            break
        found += [entry_of(m) for m in kafka.read(topic, partition, None, left)]
    return found


def entry_at(kafka: KafkaOps, topic: str, partition: int, offset: int) -> DlqEntry:
    for message in kafka.read(topic, partition, offset, 1):
        if message.offset() == offset:
            return entry_of(message)
    raise InvalidPosition(f"no record at {topic} {partition}:{offset}")


async def with_status(store: OperableStore, found: list[DlqEntry]) -> list[DlqEntry]:
    """Projector DLQ entries with `blocking (N parked)` or `released`."""
    blocked = await store.blocked()
    parked = await store.parked_records()
    statuses = []
    for entry in found:
        if entry.stream_id is not None and blocked.get(entry.stream_id) == entry.source:
            count = sum(1 for r in parked if stream_of(r) == entry.stream_id)
            status = f"blocking ({count} parked)"
        else:
            status = "released"
        statuses.append(DlqEntry(**{**entry.__dict__, "status": status}))
    return statuses


@dataclass(frozen=True)
class RetryOutcome:
    entry: DlqEntry
    result: str
    """`released`, `not blocking` (no-op), `still poison: …`, `not retried: …` (a truncated
    copy whose original is gone), or `republished`."""

    @property
    def failed(self) -> bool:
        return self.result.startswith(("still poison", "not retried"))
    applied: int = 0


def original_record(entry: DlqEntry, kafka: KafkaOps | None) -> SourceRecord:
    """The dead-lettered record itself: the DLQ's copy when whole, else read back from its
    source position (`OperationsError` when it is gone there or is not the same record)."""
    if not entry.truncated:
        return entry.original()
    if entry.source is None:
        raise OperationsError(f"DLQ record {entry.partition}:{entry.offset} is a truncated copy "
                              "naming no source: the original cannot be found")
    topic, partition, offset = entry.source
    where = f"{topic}[{partition}]@{offset}"
    if kafka is None:
        raise OperationsError(f"truncated copy of {where}: the original must be read from Kafka")
    message = next((m for m in kafka.read(topic, partition, offset, 1) if m.offset() == offset),
                   None)
    if message is None:
        raise OperationsError(
            f"the DLQ holds a truncated copy of {where} ({', '.join(entry.truncated)} cut) and "
            f"{topic} no longer holds the original (retention or compaction): cannot retry it")
    value, key = _bytes(message.value()), _bytes(message.key())
    expected = entry.header(deadletter.ORIGINAL_VALUE_SHA256)
    found = None if value is None else hashlib.sha256(value).hexdigest()
    if found != expected:  # no sha256 header: the original value was null
        raise OperationsError(f"the record now at {where} is not the dead-lettered one "
                              "(sha256 differs): cannot retry it")
    if entry.key is not None and (key is None or not key.startswith(entry.key)):
        raise OperationsError(f"the record now at {where} is not the dead-lettered one "
                              "(key differs): cannot retry it")
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = tuple((str(k), v.encode() if isinstance(v, str) else bytes(v or b""))
                    for k, v in pairs)
    return SourceRecord(topic, partition, offset, key, value, headers)


async def retry_projector(store: OperableStore, entry: DlqEntry,
                          kafka: KafkaOps | None = None) -> RetryOutcome:
    """Release the stream `entry` blocks (see the module contract). Projector must be stopped.
    `kafka` reads the original of a truncated copy (and the partition count `classify` checks)."""
    stream_id = entry.stream_id
    if stream_id is None or (await store.blocked()).get(stream_id) != entry.source:
        return RetryOutcome(entry, "not blocking (already released): nothing to do")
    try:
        original = original_record(entry, kafka)
    except OperationsError as error:
        return RetryOutcome(entry, f"not retried: {error}")
    partitions = len(kafka.partitions(original.topic)) if kafka is not None else None
    records = [original, *await store.parked_records(stream_id)]
    try:
        items = sorted((decode(record, partitions) for record in records), key=_version)
    except Exception as error:  # the same classification as the projector's
        return RetryOutcome(entry, f"still poison: {type(error).__name__}: {error}")
    try:
        applied = await store.release(stream_id, items)
    except PoisonEvent as poison:
        return RetryOutcome(entry, f"still poison: {poison.cause}")
    return RetryOutcome(entry, f"released {stream_id}: {len(items)} event(s) re-applied",
                        applied.applied)


def _version(item: Item) -> int:
    return item.envelope.version


def retry_command(kafka: KafkaOps, dlq: str, commands: str, entry: DlqEntry) -> RetryOutcome:
    """Re-produce the dead-lettered command to its partition of `commands`: the letter's copy
    when whole, else the original read back from its source and checked by sha256 (a cut copy
    or a pointer is never re-produced). `not retried: …` (as `retry_projector` answers) when the
    original is gone or differs, or the produce fails; the next entries are still tried."""
    try:
        original = original_record(entry, kafka)
        headers = [*original.headers,
                   (deadletter.RETRY_OF, f"{dlq}:{entry.partition}:{entry.offset}".encode())]
        kafka.produce(commands, original.partition, original.key, original.value, headers)
    except OperationsError as error:
        return RetryOutcome(entry, f"not retried: {error}")
    return RetryOutcome(entry, f"republished to {commands}[{original.partition}]")
