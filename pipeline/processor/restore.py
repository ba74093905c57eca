"""Restore: read partitions of the aggregates topic to their end into stream states.

Snapshots are the latest state per stream, so a restore costs O(streams), not O(events). A
stream whose latest snapshot cannot be read (not JSON, unknown shape, a state that does not
validate, content of another stream than its key) is rebuilt from its events (`rebuild`, every
partition in one read), or quarantined when its events do not rebuild it: neither stops the
processor. A read that times out raises, and the process exits (its restart reads again). Both
read through a `ports.PartitionReader`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field

from pipeline.processor.ports import PartitionReader
from pipeline.processor.rebuild import rebuild
from pipeline.processor.records import InboundRecord
from pipeline.processor.state import StreamState
from topics import decode_snapshot, parse_stream_id

log = logging.getLogger(__name__)

__all__ = ["Restored", "SnapshotMismatch", "restore", "snapshot_of"]


class SnapshotMismatch(Exception):
    """A snapshot's content names another stream or aggregate type than its key."""


def snapshot_of(record: InboundRecord) -> tuple[str, StreamState | None]:
    """The stream id and state of an aggregates record (`None` for a tombstone); raises
    `DecodeError`, pydantic's `ValidationError` for a state its model refuses, or
    `SnapshotMismatch` for a snapshot of another stream (or type) than its key says."""
    key = (record.key or b"").decode("utf-8", errors="replace")
    if record.value is None:
        return key, None
    snapshot = decode_snapshot(record.value)
    if snapshot.stream_id != key:
        raise SnapshotMismatch(f"snapshot of {snapshot.stream_id!r} under the key {key!r}")
    key_type, _ = parse_stream_id(key)
    if snapshot.aggregate_type != key_type:
        raise SnapshotMismatch(
            f"snapshot of aggregate type {snapshot.aggregate_type!r} under the key {key!r}"
        )
    return key, StreamState.from_snapshot(snapshot)


@dataclass
class Restored:
    """One partition's streams, and those quarantined (no readable snapshot, no rebuild)."""

    streams: MutableMapping[str, StreamState] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)
    quarantined: frozenset[str] = frozenset()
    read_up_to: int = 0
    """The offset after the last record read: every record before it is in `streams`."""

    def apply(self, record: InboundRecord) -> None:
        """Take one aggregates record: the latest record of a key wins, readable or not."""
        self.read_up_to = record.offset + 1
        key = (record.key or b"").decode("utf-8", errors="replace")
        try:
            stream_id, stream = snapshot_of(record)
        except Exception as error:
            log.warning(
                "unreadable snapshot",
                extra={"stream_id": key, "partition": record.partition,
                       "offset": record.offset, "error": f"{type(error).__name__}: {error}"},
            )
            self.streams.pop(key, None)
            self.unreadable.add(key)
            return
        self.unreadable.discard(stream_id)
        if stream is None:
            self.streams.pop(stream_id, None)
        else:
            self.streams[stream_id] = stream


def restore(
    reader: PartitionReader,
    topic: str,
    partitions: list[int],
    timeout_s: float,
    events_topic: str,
    staging: Callable[[int], MutableMapping[str, StreamState]] = lambda _: {},
) -> dict[int, Restored]:
    """The committed stream states of `partitions`, read from the aggregates topic into the
    mapping `staging(partition)` gives for each (a dict by default; a bounded store's own, see
    `spill`). Raises when a read does not finish (`RestoreTimeout`,
    `rebuild.RebuildInterrupted`)."""
    started = time.monotonic()
    restored = {partition: Restored(staging(partition)) for partition in partitions}
    for record in reader.read(topic, partitions, timeout_s):
        restored[record.partition].apply(record)
    unreadable = {p: found.unreadable for p, found in restored.items() if found.unreadable}
    if unreadable:
        for partition, rebuilt in rebuild(reader, events_topic, unreadable, timeout_s).items():
            restored[partition].streams.update(rebuilt.streams)
            restored[partition].quarantined = frozenset(rebuilt.failed)
    counts = {str(partition): len(found.streams) for partition, found in restored.items()}
    log.info(
        "restored",
        extra={"counts": counts, "fields": {"seconds": round(time.monotonic() - started, 3)}},
    )
    return restored
