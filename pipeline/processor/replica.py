"""The replica of every user's status, for the cross-aggregate rule of `CreateOrder`.

Users live on every partition, most of them owned by other processors, so a `ports.SnapshotTail`
(a group-less read_committed consumer) tails all partitions of the aggregates topic. It is
eventually consistent: a user deactivated a moment ago by another processor may still read as
active.
"""

from __future__ import annotations

import logging
from collections.abc import Container

from pipeline.domain.common import CustomerStatus
from pipeline.processor.ports import SnapshotTail
from pipeline.processor.records import InboundRecord
from pipeline.processor.restore import snapshot_of
from pipeline.processor.state import StreamState, customer_status_of

log = logging.getLogger(__name__)

_USER_PREFIX = b"user-"


class CustomerReplica:
    """User id -> (version, status), fed by the aggregates topic and by local commits."""

    def __init__(self, tail: SnapshotTail) -> None:
        self._tail = tail
        self._statuses: dict[str, tuple[int, CustomerStatus | None]] = {}

    def catch_up(self, partitions: int, timeout_s: float) -> None:
        """Read every partition to its current end (at start), then keep tailing with `poll`."""
        for record in self._tail.catch_up(partitions, timeout_s):
            self._apply(record)
        log.info("replica caught up", extra={"counts": {"users": len(self._statuses)}})

    def poll(self, max_messages: int = 5000, owned: Container[int] = ()) -> int:
        """Apply what has arrived since the last call, without waiting.

        Records of `owned` partitions are skipped undecoded: the owner notes its own commits
        (`note`) and what it restored at assignment, so they would only repeat what it knows."""
        applied = 0
        for record in self._tail.poll(max_messages):
            if record.partition not in owned:
                self._apply(record)
                applied += 1
        return applied

    def _apply(self, record: InboundRecord) -> None:
        key = record.key or b""
        if not key.startswith(_USER_PREFIX):
            return
        try:
            stream_id, stream = snapshot_of(record)
        except Exception as error:  # a bad snapshot must not stop the processor: keep the last
            log.warning(
                "replica ignores an unreadable snapshot",
                extra={"stream_id": key.decode("utf-8", errors="replace"),
                       "partition": record.partition, "offset": record.offset,
                       "error": f"{type(error).__name__}: {error}"},
            )
            return
        if stream is None:
            self._statuses.pop(stream_id.removeprefix("user-"), None)
        else:
            self.note(stream)

    def note(self, stream: StreamState) -> None:
        """Record a user's state if it is newer than what the replica holds."""
        user_id = stream.stream_id.removeprefix("user-")
        known = self._statuses.get(user_id)
        if known is None or known[0] <= stream.version:
            self._statuses[user_id] = (stream.version, customer_status_of(stream))

    def status(self, user_id: str) -> CustomerStatus | None:
        known = self._statuses.get(user_id)
        return known[1] if known is not None else None

    def close(self) -> None:
        self._tail.close()
