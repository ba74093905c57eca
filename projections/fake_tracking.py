"""`FakeTracking`: what both fake stores keep beside their data, as the real stores' tracking
tables (PostgreSQL) and tracking index (Elasticsearch) do: checkpoints, parked records, blocked
streams. Only the checkpoint rule differs by store, so it is a parameter of `track`.
"""

from __future__ import annotations

from projections.runtime.records import Batch


class FakeTracking:
    """The tracking half of a fake `Store` (`start`, `close`, `checkpoints`, `parked_streams`)."""

    def __init__(self) -> None:
        self.checkpoint_rows: dict[tuple[str, int], int] = {}
        self.parked: dict[tuple[str, int, int], str] = {}
        self.blocked: dict[str, tuple[str, int, int]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def checkpoints(self, topic: str) -> dict[int, int]:
        return {p: o for (t, p), o in self.checkpoint_rows.items() if t == topic}

    async def parked_streams(self) -> set[str]:
        return set(self.blocked)

    def track(self, batch: Batch, *, forward_only: bool) -> None:
        """Record the batch's parked records, blocked streams and checkpoints, then forget the
        released streams' parked records and blocks: a parked record or a blocked stream is kept
        as first recorded; a checkpoint is overwritten, or with
        `forward_only` never moved back (the search index's external versions)."""
        for stream_id, record in batch.parked:
            self.parked.setdefault((record.topic, record.partition, record.offset), stream_id)
        for stream_id, record in batch.blocked:
            self.blocked.setdefault(stream_id, (record.topic, record.partition, record.offset))
        for stream_id in batch.released:
            self.blocked.pop(stream_id, None)
            self.parked = {at: held for at, held in self.parked.items() if held != stream_id}
        for where, offset in batch.checkpoints.items():
            held = self.checkpoint_rows.get(where, offset)
            self.checkpoint_rows[where] = max(offset, held) if forward_only else offset
