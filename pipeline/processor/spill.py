"""A bound on the stream states a processor keeps in memory: the coldest go to local disk.

`BoundedStateStore` is a `state.StateStore` that keeps at most `resident` states in memory,
the most recently used, and writes the others to a SQLite file of its own (`SpilledStates`),
from which a command for a cold stream loads its state back (and makes it resident again). The
file is a cache of this process: made empty at start, deleted at close, never read by another;
the aggregates topic stays the truth, and a restore fills the store again from it.

A restore writes into the store as it reads (`staging`), so a restore of more streams than the
bound never holds them all in memory either: resident memory stays about `resident` states
plus the process's own, whatever the streams of the partitions owned. The price: a command for
a cold stream reads it from the file (a point lookup on its id), and a command for a stream not
seen before asks the file once, to learn that it is new.

Without a bound (the default, `CQRS_PROCESSOR_MAX_RESIDENT_STREAMS` unset) the processor uses
the plain `StateStore`, every owned stream in memory.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from datetime import UTC, datetime
from pathlib import Path

from pipeline.processor.state import StateStore, StreamState
from topics import decode_snapshot

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The `updated_at` of a spilled snapshot: a state's own fields are all that is kept."""


def _encode(stream: StreamState) -> str:
    return stream.to_snapshot(_EPOCH).model_dump_json()


def _decode(data: str) -> StreamState:
    return StreamState.from_snapshot(decode_snapshot(data.encode()))


class SpilledStates:
    """Stream states by id, each with its partition, in a SQLite file in `directory` (a new
    temporary directory by default); synchronous writes are off: the file is a cache that a
    crash loses with the process."""

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = Path(tempfile.mkdtemp(prefix="cqrs-spill-", dir=directory))
        self._path = self._directory / "states.sqlite"
        self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
            "CREATE TABLE states (stream_id TEXT PRIMARY KEY, partition INTEGER NOT NULL,"
            " data TEXT NOT NULL) WITHOUT ROWID;"
            "CREATE INDEX states_partition ON states (partition);"
        )
        self._counts: dict[int, int] = {}

    @property
    def path(self) -> Path:
        return self._path

    def count(self, partition: int | None = None) -> int:
        if partition is None:
            return sum(self._counts.values())
        return self._counts.get(partition, 0)

    def write(self, partition: int, streams: Iterable[StreamState]) -> None:
        """Keep `streams` of `partition` (replacing what was kept of them)."""
        rows = [(stream.stream_id, partition, _encode(stream)) for stream in streams]
        if not rows:
            return
        self._db.execute("BEGIN")
        before = self._db.total_changes
        self._db.executemany("INSERT OR IGNORE INTO states VALUES (?, ?, ?)", rows)
        added = self._db.total_changes - before
        if added < len(rows):
            self._db.executemany(
                "UPDATE states SET partition = ?, data = ? WHERE stream_id = ?",
                [(p, data, stream_id) for stream_id, p, data in rows])
        self._db.execute("COMMIT")
        self._counts[partition] = self._counts.get(partition, 0) + added

    def take(self, partition: int, stream_id: str) -> StreamState | None:
        """The kept state of `stream_id` in `partition`, removed from the file; `None`."""
        row = self._db.execute(
            "DELETE FROM states WHERE stream_id = ? AND partition = ? RETURNING data",
            (stream_id, partition)).fetchone()
        if row is None:
            return None
        self._counts[partition] -= 1
        return _decode(row[0])

    def discard(self, partition: int, stream_id: str) -> None:
        if self._db.execute("DELETE FROM states WHERE stream_id = ? AND partition = ?",
                            (stream_id, partition)).rowcount:
            self._counts[partition] -= 1

    def drain(self, partition: int) -> Iterator[StreamState]:
        """Every kept state of `partition`, removed from the file (read in pages)."""
        while True:
            rows = self._db.execute(
                "DELETE FROM states WHERE stream_id IN (SELECT stream_id FROM states"
                " WHERE partition = ? LIMIT 1000) RETURNING data", (partition,)).fetchall()
            if not rows:
                self._counts.pop(partition, None)
                return
            self._counts[partition] -= len(rows)
            for (data,) in rows:
                yield _decode(data)

    def close(self) -> None:
        self._db.close()
        self._path.unlink(missing_ok=True)
        self._directory.rmdir()


class BoundedStateStore(StateStore):
    """A `StateStore` with at most `resident` states in memory, the least recently used of the
    others in a `SpilledStates` (see the module docstring)."""

    def __init__(self, resident: int, spill_directory: Path | None = None) -> None:
        if resident < 1:
            raise ValueError(f"resident must be >= 1, got {resident}")
        super().__init__()
        self.resident = resident
        self._recency: OrderedDict[str, int] = OrderedDict()
        """Resident stream ids, least recently used first, with their partitions."""
        self._spilled = SpilledStates(spill_directory)
        self._staging: dict[int, dict[str, StreamState]] = {}

    @property
    def spilled(self) -> SpilledStates:
        return self._spilled

    def staging(self, partition: int) -> MutableMapping[str, StreamState]:
        """Where a restore of `partition` writes the states it reads, bounded as the store is;
        `load` with it takes them over. What the store held of `partition` is forgotten."""
        self._forget(partition)
        self._staging[partition] = {}
        return _Staged(self, partition)

    def load(self, partition: int, streams: Mapping[str, StreamState],
             quarantined: frozenset[str] = frozenset()) -> None:
        if isinstance(streams, _Staged) and streams.store is self:
            resident = self._staging.pop(partition, {})
        else:
            self._forget(partition)
            resident = {}
            for stream_id, stream in streams.items():
                resident[stream_id] = stream
                self._touch(stream_id, partition)
            self._partitions[partition] = resident
            self._evict()
        self._partitions[partition] = resident
        self._quarantined[partition] = quarantined

    def drop(self, partition: int) -> dict[str, StreamState]:
        """Own `partition` no more; its streams, the spilled ones read back from the file."""
        streams: dict[str, StreamState] = {}
        for stream in self._spilled.drain(partition):
            streams[stream.stream_id] = stream
        resident = super().drop(partition)
        for stream_id in resident:
            self._recency.pop(stream_id, None)
        streams.update(resident)
        return streams

    def put(self, partition: int, stream: StreamState) -> bool:
        streams = self._partitions.get(partition)
        if streams is None:
            return False
        self._keep(streams, partition, stream.stream_id, stream)
        return True

    def get(self, partition: int, stream_id: str) -> StreamState | None:
        streams = self._partitions.get(partition)
        if streams is None:
            return None
        stream = streams.get(stream_id)
        if stream is not None:
            self._recency.move_to_end(stream_id)
            return stream
        stream = self._spilled.take(partition, stream_id)
        if stream is not None:
            streams[stream_id] = stream
            self._touch(stream_id, partition)
            self._evict()
        return stream

    def stream_count(self) -> int:
        return len(self._recency) + self._spilled.count()

    def counts(self) -> tuple[int, int]:
        return len(self._recency), self._spilled.count()

    def close(self) -> None:
        self._spilled.close()

    def _keep(self, streams: dict[str, StreamState], partition: int, stream_id: str,
              stream: StreamState) -> None:
        """Make `stream` the resident state of `stream_id`: a copy in the file (evicted since
        it was read) is stale from now on, so it goes; then the coldest past the bound go."""
        if stream_id not in streams and self._spilled.count(partition):
            self._spilled.discard(partition, stream_id)
        streams[stream_id] = stream
        self._touch(stream_id, partition)
        self._evict()

    def _touch(self, stream_id: str, partition: int) -> None:
        self._recency[stream_id] = partition
        self._recency.move_to_end(stream_id)

    def _forget(self, partition: int) -> None:
        for stream_id in self._partitions.pop(partition, {}):
            self._recency.pop(stream_id, None)
        for stream_id in self._staging.pop(partition, {}):
            self._recency.pop(stream_id, None)
        self._quarantined.pop(partition, None)
        for _ in self._spilled.drain(partition):
            pass

    def _resident_of(self, partition: int) -> dict[str, StreamState] | None:
        streams = self._partitions.get(partition)
        return streams if streams is not None else self._staging.get(partition)

    def _evict(self) -> None:
        """Write the least recently used states past the bound to the file."""
        excess = len(self._recency) - self.resident
        if excess <= 0:
            return
        by_partition: dict[int, list[StreamState]] = {}
        for _ in range(excess):
            stream_id, partition = self._recency.popitem(last=False)
            streams = self._resident_of(partition)
            if streams is not None and (stream := streams.pop(stream_id, None)) is not None:
                by_partition.setdefault(partition, []).append(stream)
        for partition, streams_out in by_partition.items():
            self._spilled.write(partition, streams_out)


class _Staged(MutableMapping[str, StreamState]):
    """A restore's view of one partition of a `BoundedStateStore` (`staging`)."""

    def __init__(self, store: BoundedStateStore, partition: int) -> None:
        self.store = store
        self.partition = partition

    def _resident(self) -> dict[str, StreamState]:
        return self.store._staging[self.partition]

    def __setitem__(self, stream_id: str, stream: StreamState) -> None:
        self.store._keep(self._resident(), self.partition, stream_id, stream)

    def __getitem__(self, stream_id: str) -> StreamState:
        stream = self._resident().get(stream_id)
        if stream is None:
            stream = self.store.spilled.take(self.partition, stream_id)
            if stream is None:
                raise KeyError(stream_id)
            self[stream_id] = stream
        return stream

    def __delitem__(self, stream_id: str) -> None:
        if self._resident().pop(stream_id, None) is not None:
            self.store._recency.pop(stream_id, None)
            return
        before = self.store.spilled.count(self.partition)
        self.store.spilled.discard(self.partition, stream_id)
        if self.store.spilled.count(self.partition) == before:
            raise KeyError(stream_id)

    def __iter__(self) -> Iterator[str]:
        raise TypeError("a staged partition is written and read by id, not iterated")

    def __len__(self) -> int:
        return len(self._resident()) + self.store.spilled.count(self.partition)


__all__ = ["BoundedStateStore", "SpilledStates"]
