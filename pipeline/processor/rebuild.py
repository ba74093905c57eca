"""Rebuilding a stream whose snapshot cannot be read, from its events.

A snapshot that does not decode, or whose state does not validate (a rolling upgrade that added
a state field the older model forbids, a foreign writer), must not stop the processor. The
stream's events are on the same partition of the events topic, keyed `<stream_id>@<version>`:
they are decoded and upcast (`contracts.from_envelope`) and folded (`contracts.evolve`), and the
duplicate window is rebuilt from their `causation_id`s. A stream whose events are missing, out of
sequence or unreadable too cannot be rebuilt: the caller quarantines it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pipeline.domain import aggregates
from pipeline.processor.ports import PartitionReader
from pipeline.processor.state import StreamState
from topics import EventEnvelope, decode_event, from_envelope, parse_stream_id, remember_command

log = logging.getLogger(__name__)


class RebuildFailed(Exception):
    """The stream's events do not make a state (missing, out of sequence, or unreadable)."""


def fold_stream(stream_id: str, envelopes: Iterable[EventEnvelope]) -> StreamState:
    """The stream's state after its events (versions 1..n, each once); raises on anything else."""
    by_version = {envelope.version: envelope for envelope in envelopes}
    if not by_version:
        raise RebuildFailed(f"no events of {stream_id!r} on its partition")
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


def rebuild(
    reader: PartitionReader,
    events_topic: str,
    partition: int,
    stream_ids: set[str],
    timeout_s: float,
) -> tuple[dict[str, StreamState], set[str]]:
    """The states of `stream_ids` folded from `partition` of the events topic, and the ids that
    could not be rebuilt (each logged with its reason). Reads the whole partition once."""
    found: dict[str, list[EventEnvelope]] = {stream_id: [] for stream_id in stream_ids}
    failed: dict[str, str] = {}
    try:
        for record in reader.read(events_topic, [partition], timeout_s):
            stream_id = (record.key or b"").decode("utf-8", errors="replace").rpartition("@")[0]
            if stream_id not in found or stream_id in failed:
                continue
            try:
                found[stream_id].append(decode_event(record.value or b""))
            except Exception as error:
                failed[stream_id] = f"event at offset {record.offset}: {error}"
    except Exception as error:  # a timeout or a broker fault: none of them is rebuilt
        failed.update({stream_id: f"reading events: {error}" for stream_id in stream_ids})
    states: dict[str, StreamState] = {}
    for stream_id, envelopes in found.items():
        if stream_id in failed:
            continue
        try:
            states[stream_id] = fold_stream(stream_id, envelopes)
        except Exception as error:
            failed[stream_id] = f"{type(error).__name__}: {error}"
    for stream_id, stream in states.items():
        log.warning(
            "stream rebuilt from its events (unreadable snapshot)",
            extra={"stream_id": stream_id, "partition": partition,
                   "fields": {"version": stream.version}},
        )
    for stream_id, reason in failed.items():
        log.error(
            "stream quarantined: unreadable snapshot, events do not rebuild it",
            extra={"stream_id": stream_id, "partition": partition, "error": reason},
        )
    return states, set(failed)
