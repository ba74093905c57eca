"""Rebuilding streams whose snapshot cannot be read, from their events.

A snapshot that does not decode, whose state does not validate (a rolling upgrade that added a
state field the older model forbids, a foreign writer), or whose content names another stream
than its key must not stop the processor. A stream's events are on its partition of the events
topic, keyed `<stream_id>@<version>`: they are decoded and upcast (`from_envelope`) and folded
(`aggregates.evolve`), and the duplicate window is rebuilt from their `causation_id`s. An event
whose key is not `event_key` of its own stream id and version is skipped (and logged).

An erased stream (docs/erasure.md) is its erasure (`UserForgotten`) alone: its earlier keys are
tombstoned (a null value, read as "this version is erased") and, once compacted, gone; the
erasure, which must be the stream's last event, rebuilds the erased state at its version.

Only a deterministic failure quarantines a stream (no events, versions not 1..n, an event that
does not decode): reading again would give the same answer. A read that does not finish (a
timeout, a broker fault) decides nothing: `RebuildInterrupted` is raised, as a restore timeout
is, so no stream is quarantined and no honest command dead-lettered because the broker was slow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.domain import aggregates
from pipeline.processor.ports import PartitionReader
from pipeline.processor.state import StreamState
from topics import (
    EVENTS,
    EventEnvelope,
    decode_event,
    event_key,
    from_envelope,
    parse_stream_id,
    remember_command,
)

log = logging.getLogger(__name__)


class RebuildFailed(Exception):
    """The stream's events do not make a state (missing, out of sequence, or unreadable)."""


class RebuildInterrupted(Exception):
    """Reading the events did not finish (timeout, broker fault): nothing was decided."""


@dataclass
class Rebuilt:
    """One partition's rebuilt streams, and those whose events do not rebuild them."""

    streams: dict[str, StreamState] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)


def fold_stream(stream_id: str, envelopes: Iterable[EventEnvelope]) -> StreamState:
    """The stream's state after its events (versions 1..n, each once); raises on anything else."""
    by_version = {envelope.version: envelope for envelope in envelopes}
    if not by_version:
        raise RebuildFailed(f"no events of {stream_id!r} on its partition")
    erasures = [version for version, envelope in by_version.items() if _erases(envelope)]
    if erasures:
        return _erased(stream_id, by_version, max(erasures))
    if sorted(by_version) != list(range(1, len(by_version) + 1)):
        raise RebuildFailed(f"events of {stream_id!r} are not versions 1..{len(by_version)}")
    aggregate_type, _ = parse_stream_id(stream_id)
    state: aggregates.State | None = None
    window: list[str] = []
    for version in range(1, len(by_version) + 1):
        envelope = by_version[version]
        state = aggregates.evolve(state, from_envelope(envelope))
        cause = envelope.causation_id
        if cause is not None and (not window or window[-1] != cause):
            window = remember_command(window, cause)
    return StreamState(stream_id, aggregate_type, len(by_version), state, tuple(window))


def _erases(envelope: EventEnvelope) -> bool:
    """Whether the envelope's event type erases its stream (`Event.erases_stream`)."""
    spec = EVENTS.get(envelope.type)
    return spec is not None and spec.model.erases_stream


def _erased_before(envelopes: list[EventEnvelope], versions: list[str]) -> bool:
    """Whether the stream was erased after every one of `versions` (as keyed): those events
    are erased, whatever their content."""
    erasures = [envelope.version for envelope in envelopes if _erases(envelope)]
    return bool(erasures) and all(
        version.isdigit() and int(version) < max(erasures) for version in versions)


def _erased(stream_id: str, by_version: dict[int, EventEnvelope], version: int) -> StreamState:
    """An erased stream: its state after its erasure alone, at the erasure's version, which must
    be the stream's last."""
    if max(by_version) != version:
        raise RebuildFailed(f"events of {stream_id!r} follow its erasure at version {version}")
    erasure = by_version[version]
    aggregate_type, _ = parse_stream_id(stream_id)
    state = aggregates.evolve(None, from_envelope(erasure))
    return StreamState(stream_id, aggregate_type, version, state).erased(erasure.causation_id)


def rebuild(
    reader: PartitionReader,
    events_topic: str,
    wanted: dict[int, set[str]],
    timeout_s: float,
) -> dict[int, Rebuilt]:
    """The streams of `wanted` (partition -> stream ids) folded from their partitions of the
    events topic, read in one pass within one `timeout_s`; the ids that cannot be rebuilt are
    logged with their reason. Raises `RebuildInterrupted` when the read does not finish."""
    envelopes: dict[tuple[int, str], list[EventEnvelope]] = {
        (partition, stream_id): [] for partition, ids in wanted.items() for stream_id in ids
    }
    reasons: dict[tuple[int, str], str] = {}
    unreadable: dict[tuple[int, str], list[tuple[str, str]]] = {}
    """Events that do not decode, by stream: (version as keyed, why); decided once all is read,
    since an erasure later in the stream makes every earlier one irrelevant."""
    try:
        for record in reader.read(events_topic, sorted(wanted), timeout_s):
            key = (record.key or b"").decode("utf-8", errors="replace")
            stream_id, _, keyed_version = key.rpartition("@")
            slot = (record.partition, stream_id)
            if slot not in envelopes:
                continue
            if record.value is None:  # a tombstone: that version is erased
                continue
            try:
                envelope = decode_event(record.value or b"")
            except Exception as error:
                unreadable.setdefault(slot, []).append(
                    (keyed_version, f"event at offset {record.offset}: {error}"))
                continue
            if key != event_key(envelope.stream_id, envelope.version):
                log.warning(
                    "event skipped in a rebuild: its key is not its stream id and version",
                    extra={"stream_id": slot[1], "partition": record.partition,
                           "offset": record.offset,
                           "fields": {"event_stream_id": envelope.stream_id,
                                      "event_version": envelope.version}},
                )
                continue
            envelopes[slot].append(envelope)
    except Exception as error:
        log.error(
            "rebuild interrupted: events not read to their end, no stream quarantined",
            extra={"partitions": sorted(wanted), "error": f"{type(error).__name__}: {error}"},
        )
        raise RebuildInterrupted(
            f"reading {events_topic} partitions {sorted(wanted)}: {type(error).__name__}: {error}"
        ) from error
    for slot, failures in unreadable.items():
        if not _erased_before(envelopes[slot], [version for version, _ in failures]):
            reasons[slot] = failures[0][1]
    rebuilt = {partition: Rebuilt() for partition in wanted}
    for slot, found in envelopes.items():
        if slot not in reasons:
            try:
                rebuilt[slot[0]].streams[slot[1]] = fold_stream(slot[1], found)
            except Exception as error:
                reasons[slot] = f"{type(error).__name__}: {error}"
    for (partition, stream_id), reason in reasons.items():
        rebuilt[partition].failed.add(stream_id)
        log.error(
            "stream quarantined: unreadable snapshot, events do not rebuild it",
            extra={"stream_id": stream_id, "partition": partition, "error": reason},
        )
    for partition, done in rebuilt.items():
        for stream_id, stream in done.streams.items():
            log.warning(
                "stream rebuilt from its events (unreadable snapshot)",
                extra={"stream_id": stream_id, "partition": partition,
                       "fields": {"version": stream.version}},
            )
    return rebuilt
