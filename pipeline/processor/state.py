"""Stream states: the committed store (per owned partition) and the per-batch overlay.

Decisions of a batch read through an `Overlay` and write only into it. The overlay reaches the
committed store (`Overlay.commit_into`) only after the Kafka transaction commits; when the
transaction aborts the overlay is dropped, so the store never holds a state Kafka does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from pipeline.domain import aggregates, users
from pipeline.domain.aggregates import State
from pipeline.domain.common import CustomerStatus
from topics import Snapshot, parse_stream_id, remember_command


class StateUnavailable(Exception):
    """The store cannot give or keep a state (its spill file failed: `spill`). Not a fault of
    the record being handled: it stops the batch and the process, nothing decided."""


@dataclass(frozen=True)
class StreamState:
    """A stream at `version`, with the window of command ids it has accepted."""

    stream_id: str
    aggregate_type: str
    version: int = 0
    state: State | None = None
    recent_command_ids: tuple[str, ...] = ()

    def has_seen(self, command_id: str) -> bool:
        return command_id in self.recent_command_ids

    def advanced(self, state: State | None, added_versions: int, command_id: str) -> StreamState:
        """The stream after an accepted command that appended `added_versions` events."""
        window = remember_command(list(self.recent_command_ids), command_id)
        return StreamState(
            self.stream_id,
            self.aggregate_type,
            self.version + added_versions,
            state,
            tuple(window),
        )

    def erased(self, command_id: str | None) -> StreamState:
        """The stream once erased: its window of command ids is the erasure's alone (kept, so
        that a retry of it is a duplicate), nothing of the subject's earlier commands."""
        return replace(self, recent_command_ids=(command_id,) if command_id is not None else ())

    def to_snapshot(self, updated_at: datetime) -> Snapshot:
        return Snapshot(
            stream_id=self.stream_id,
            aggregate_type=self.aggregate_type,
            version=self.version,
            state=aggregates.state_to_data(self.state),
            recent_command_ids=list(self.recent_command_ids),
            updated_at=updated_at,
        )

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> StreamState:
        return cls(
            snapshot.stream_id,
            snapshot.aggregate_type,
            snapshot.version,
            aggregates.state_from_data(snapshot.aggregate_type, snapshot.state),
            tuple(snapshot.recent_command_ids),
        )

    @classmethod
    def empty(cls, stream_id: str) -> StreamState:
        aggregate_type, _ = parse_stream_id(stream_id)
        return cls(stream_id, aggregate_type)


def customer_status_of(stream: StreamState) -> CustomerStatus | None:
    """The status a user stream answers to the cross-aggregate lookup."""
    if isinstance(stream.state, users.UserState):
        return users.status(stream.state)
    return None


class StateStore:
    """Committed stream states of the partitions this process owns (restored on assignment)."""

    def __init__(self) -> None:
        self._partitions: dict[int, dict[str, StreamState]] = {}
        self._quarantined: dict[int, frozenset[str]] = {}

    @property
    def partitions(self) -> frozenset[int]:
        return frozenset(self._partitions)

    def owns(self, partition: int) -> bool:
        return partition in self._partitions

    def staging(self, partition: int) -> MutableMapping[str, StreamState]:
        """Where a restore of `partition` writes the states it reads, for `load` (a dict)."""
        return {}

    def load(
        self,
        partition: int,
        streams: Mapping[str, StreamState],
        quarantined: frozenset[str] = frozenset(),
    ) -> None:
        """Own `partition` with these states; `quarantined` streams have no readable state."""
        self._partitions[partition] = dict(streams)
        self._quarantined[partition] = quarantined

    def close(self) -> None:
        """Release what the store holds outside memory (nothing here)."""

    def drop(self, partition: int) -> Iterable[StreamState]:
        """Own `partition` no more; its streams as they were."""
        self._quarantined.pop(partition, None)
        return self._partitions.pop(partition, {}).values()

    def is_quarantined(self, partition: int, stream_id: str) -> bool:
        return stream_id in self._quarantined.get(partition, ())

    def put(self, partition: int, stream: StreamState) -> bool:
        """Store `stream` if `partition` is still owned; False when it was revoked meanwhile."""
        streams = self._partitions.get(partition)
        if streams is None:
            return False
        streams[stream.stream_id] = stream
        return True

    def get(self, partition: int, stream_id: str) -> StreamState | None:
        return self._partitions.get(partition, {}).get(stream_id)

    def stream_count(self) -> int:
        return sum(len(streams) for streams in self._partitions.values())

    def counts(self) -> tuple[int, int]:
        """(streams in memory, streams spilled to disk): every one in memory here."""
        return self.stream_count(), 0


@dataclass
class Overlay:
    """The states a batch changed (stream id -> partition, state), over a `StateStore`."""

    store: StateStore
    changed: dict[str, tuple[int, StreamState]] = field(default_factory=dict)

    def get(self, partition: int, stream_id: str, aggregate_type: str | None = None) -> StreamState:
        """The stream's latest state; pass `aggregate_type` when known to skip parsing the id."""
        pending = self.changed.get(stream_id)
        if pending is not None:
            return pending[1]
        stored = self.store.get(partition, stream_id)
        if stored is not None:
            return stored
        if aggregate_type is None:
            return StreamState.empty(stream_id)
        return StreamState(stream_id, aggregate_type)

    def put(self, partition: int, stream: StreamState) -> None:
        self.changed[stream.stream_id] = (partition, stream)

    def is_quarantined(self, partition: int, stream_id: str) -> bool:
        return self.store.is_quarantined(partition, stream_id)

    def owns(self, partition: int) -> bool:
        return self.store.owns(partition)

    def find(self, partition: int, stream_id: str) -> StreamState | None:
        """The stream's latest state if it exists (`partition` must be the stream's own)."""
        pending = self.changed.get(stream_id)
        return pending[1] if pending is not None else self.store.get(partition, stream_id)

    def commit_into(self) -> list[StreamState]:
        """Apply the batch to the committed store (only after the transaction committed)."""
        committed = [
            stream
            for partition, stream in self.changed.values()
            if self.store.put(partition, stream)
        ]
        self.changed = {}
        return committed

    def drop(self) -> None:
        """Forget the batch (its transaction aborted or its outcome is unknown)."""
        self.changed = {}
