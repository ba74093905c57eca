"""A bound on the stream states a processor keeps in memory: the coldest go to local disk.

`BoundedStateStore` is a `state.StateStore` that keeps at most `resident` states in memory,
the most recently used, and writes the others to a SQLite file of its own (`SpilledStates`),
from which a command for a cold stream loads its state back (and makes it resident again). The
file is a cache of this process: made at start (the files an earlier process of the same slot
left, killed before it could remove them, are removed then), deleted at close, never read by
another; the aggregates topic stays the truth, and a restore fills the store again from it.

A restore writes into the store as it reads (`staging`), so a restore of more streams than the
bound never holds them all in memory either, and a revocation hands the partition's states
over one by one (`drop` is lazy): resident memory stays about `resident` states plus the
process's own, whatever the streams of the partitions owned. The price: a command for a cold
stream reads it from the file (a point lookup on its partition and id), a command for a stream
not seen before asks the file once, to learn that it is new, and a restore encodes the states
it evicts (in batches of a tenth of the bound).

The file failing (a full disk, an I/O error) raises `StateUnavailable`, which is not a fault of
the record being handled: it stops the batch and the process (`handling.handle` lets it
through), and a state is never dropped from memory before it is in the file.

Without a bound (the default, `CQRS_PROCESSOR_MAX_RESIDENT_STREAMS` unset) the processor uses
the plain `StateStore`, every owned stream in memory.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from pipeline.processor.state import StateStore, StateUnavailable, StreamState
from topics import decode_snapshot

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The `updated_at` of a spilled snapshot: a state's own fields are all that is kept."""
_PAGE = 1000
_T = TypeVar("_T")
_Key = tuple[int, str]
"""(partition, stream id)."""


def _encode(stream: StreamState) -> str:
    return stream.to_snapshot(_EPOCH).model_dump_json()


def _decode(data: str) -> StreamState:
    return StreamState.from_snapshot(decode_snapshot(data.encode()))


class SpilledStates:
    """Stream states by (partition, id) in a SQLite file in a directory of its own, made under
    `directory` (the system's temporary directory by default) and named after `owner`;
    synchronous writes are off: the file is a cache that a crash loses with the process."""

    def __init__(self, directory: Path | None = None, owner: str = "processor") -> None:
        parent = Path(directory or tempfile.gettempdir())
        prefix = f"cqrs-spill-{_safe(owner)}-"
        for stale in parent.glob(f"{prefix}*"):  # a killed predecessor's, never removed
            shutil.rmtree(stale, ignore_errors=True)
        self._directory = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        self._path = self._directory / "states.sqlite"
        self._counts: dict[int, int] = {}
        self._closed = False
        with self._failing():
            self._db = sqlite3.connect(self._path, isolation_level=None)
            self._db.executescript(
                "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
                "CREATE TABLE states (partition INTEGER NOT NULL, stream_id TEXT NOT NULL,"
                " data TEXT NOT NULL, PRIMARY KEY (partition, stream_id)) WITHOUT ROWID;")

    @property
    def path(self) -> Path:
        return self._path

    def count(self, partition: int | None = None) -> int:
        if partition is None:
            return sum(self._counts.values())
        return self._counts.get(partition, 0)

    def write(self, partition: int, streams: Iterable[tuple[str, StreamState]]) -> None:
        """Keep `streams` (id, state) of `partition`, replacing what was kept of them."""
        rows = [(partition, stream_id, _encode(stream)) for stream_id, stream in streams]
        if rows:
            with self._failing():
                self._write(partition, rows)

    def _write(self, partition: int, rows: list[tuple[int, str, str]]) -> None:
        self._db.execute("BEGIN")
        try:
            added = self._db.executemany(
                "INSERT OR IGNORE INTO states VALUES (?, ?, ?)", rows).rowcount
            if added < len(rows):
                self._db.executemany(
                    "UPDATE states SET data = ? WHERE partition = ? AND stream_id = ?",
                    [(data, p, stream_id) for p, stream_id, data in rows])
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._counts[partition] = self._counts.get(partition, 0) + added

    def take(self, partition: int, stream_id: str) -> StreamState | None:
        """The kept state of `stream_id` in `partition`, removed from the file; `None`."""
        if not self._counts.get(partition):
            return None
        with self._failing():
            row = self._db.execute(
                "DELETE FROM states WHERE partition = ? AND stream_id = ? RETURNING data",
                (partition, stream_id)).fetchone()
        if row is None:
            return None
        self._counts[partition] -= 1
        return _decode(row[0])

    def discard(self, partition: int, stream_id: str) -> bool:
        """Remove the kept state of `stream_id` in `partition`; whether there was one."""
        if not self._counts.get(partition):
            return False
        with self._failing():
            removed: int = self._db.execute(
                "DELETE FROM states WHERE partition = ? AND stream_id = ?",
                (partition, stream_id)).rowcount
        self._counts[partition] -= removed
        return bool(removed)

    def forget(self, partition: int) -> None:
        """Remove every kept state of `partition`, unread."""
        if self._counts.pop(partition, 0):
            with self._failing():
                self._db.execute("DELETE FROM states WHERE partition = ?", (partition,))

    def drain(self, partition: int) -> Iterator[StreamState]:
        """Every kept state of `partition`, removed from the file (read in pages)."""
        while self._counts.get(partition):
            with self._failing():
                rows = self._db.execute(
                    "DELETE FROM states WHERE partition = ? AND stream_id IN (SELECT stream_id"
                    " FROM states WHERE partition = ? LIMIT ?) RETURNING data",
                    (partition, partition, _PAGE)).fetchall()
            if not rows:
                break
            self._counts[partition] -= len(rows)
            for (data,) in rows:
                yield _decode(data)
        self._counts.pop(partition, None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._db.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    @contextmanager
    def _failing(self) -> Iterator[None]:
        """SQLite's errors as `StateUnavailable` (not a record's fault: the process stops)."""
        try:
            yield
        except sqlite3.Error as error:
            raise StateUnavailable(
                f"the processor's spill file {self._path} failed ({error}); free or fix its "
                "disk (CQRS_PROCESSOR_SPILL_DIR) and restart the processor") from error


def _safe(owner: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in owner)[:80]


class BoundedStateStore(StateStore):
    """A `StateStore` with at most `resident` states in memory, the least recently used of the
    others in a `SpilledStates` (see the module docstring)."""

    def __init__(self, resident: int, spill_directory: Path | None = None,
                 owner: str = "processor") -> None:
        if resident < 1:
            raise ValueError(f"resident must be >= 1, got {resident}")
        super().__init__()
        self.resident = resident
        self._low_water = resident - resident // 10
        """Eviction writes down to this many resident states, in one transaction."""
        self._recency: OrderedDict[_Key, None] = OrderedDict()
        """Resident states, least recently used first."""
        self._spilled = SpilledStates(spill_directory, owner)
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
            self._partitions[partition] = self._staging.pop(partition, {})
        else:
            self._forget(partition)
            resident: dict[str, StreamState] = {}
            self._partitions[partition] = resident
            for stream_id, stream in streams.items():
                self._keep(resident, partition, stream_id, stream)
        self._quarantined[partition] = quarantined

    def drop(self, partition: int) -> Iterable[StreamState]:
        """Own `partition` no more; its streams (the spilled ones read back from the file one
        page at a time, as the caller iterates: iterate to the end)."""
        self._quarantined.pop(partition, None)
        resident = self._partitions.pop(partition, {})
        for stream_id in resident:
            self._recency.pop((partition, stream_id), None)
        return _chain(list(resident.values()), self._spilled.drain(partition))

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
            self._recency.move_to_end((partition, stream_id))
            return stream
        stream = self._spilled.take(partition, stream_id)
        if stream is not None:
            self._keep(streams, partition, stream_id, stream)
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
        if stream_id not in streams:
            self._spilled.discard(partition, stream_id)
        streams[stream_id] = stream
        key = (partition, stream_id)
        self._recency[key] = None
        self._recency.move_to_end(key)
        if len(self._recency) > self.resident:
            self._evict()

    def _forget(self, partition: int) -> None:
        for streams in (self._partitions.pop(partition, {}), self._staging.pop(partition, {})):
            for stream_id in streams:
                self._recency.pop((partition, stream_id), None)
        self._quarantined.pop(partition, None)
        self._spilled.forget(partition)

    def _resident_of(self, partition: int) -> dict[str, StreamState] | None:
        streams = self._partitions.get(partition)
        return streams if streams is not None else self._staging.get(partition)

    def _evict(self) -> None:
        """Write the least recently used states down to the low-water mark to the file, then
        drop them from memory (a failed write drops nothing)."""
        coldest: list[_Key] = []
        for key in self._recency:
            if len(self._recency) - len(coldest) <= self._low_water:
                break
            coldest.append(key)
        by_partition: dict[int, list[tuple[str, StreamState]]] = {}
        for partition, stream_id in coldest:
            streams = self._resident_of(partition)
            if streams is not None and stream_id in streams:
                by_partition.setdefault(partition, []).append((stream_id, streams[stream_id]))
        for partition, out in by_partition.items():
            self._spilled.write(partition, out)
        for partition, stream_id in coldest:
            del self._recency[(partition, stream_id)]
            streams = self._resident_of(partition)
            if streams is not None:
                streams.pop(stream_id, None)


def _chain(first: list[_T], then: Iterator[_T]) -> Iterator[_T]:
    yield from first
    yield from then


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
        if not self._discard(stream_id):
            raise KeyError(stream_id)

    def pop(self, stream_id: str, *default: StreamState | None) -> StreamState | None:  # type: ignore[override]
        """A restore's tombstone: the state goes, read from the file without being made
        resident again when it was spilled."""
        stream = self._resident().pop(stream_id, None)
        if stream is not None:
            self.store._recency.pop((self.partition, stream_id), None)
        else:
            stream = self.store.spilled.take(self.partition, stream_id)
        if stream is not None:
            return stream
        if default:
            return default[0]
        raise KeyError(stream_id)

    def _discard(self, stream_id: str) -> bool:
        if self._resident().pop(stream_id, None) is not None:
            self.store._recency.pop((self.partition, stream_id), None)
            return True
        return self.store.spilled.discard(self.partition, stream_id)

    def __iter__(self) -> Iterator[str]:
        raise TypeError("a staged partition is written and read by id, not iterated")

    def __len__(self) -> int:
        return len(self._resident()) + self.store.spilled.count(self.partition)


__all__ = ["BoundedStateStore", "SpilledStates"]
