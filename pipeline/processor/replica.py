"""The replica of every user's status, for the cross-aggregate rule of `CreateOrder`.

Users live on every partition, most of them owned by other processors, so a group-less
read_committed consumer tails all partitions of the aggregates topic. It is eventually
consistent: a user deactivated a moment ago by another processor may still read as active.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Container
from typing import Any

from confluent_kafka import Consumer

from pipeline.domain.common import CustomerStatus
from pipeline.processor.restore import read_to_end, snapshot_of
from pipeline.processor.state import StreamState, customer_status_of

log = logging.getLogger(__name__)

_USER_PREFIX = b"user-"


class CustomerReplica:
    """User id -> (version, status), fed by the aggregates topic and by local commits."""

    def __init__(self, consumer_config: dict[str, Any], topic: str, partitions: int) -> None:
        self._consumer = Consumer(consumer_config)
        self._topic = topic
        self._partitions = partitions
        self._statuses: dict[str, tuple[int, CustomerStatus | None]] = {}

    def catch_up(self, timeout_s: float) -> None:
        """Read every partition to its current end (at start), then keep tailing with `poll`."""
        deadline = time.monotonic() + timeout_s
        for _, message in read_to_end(
            self._consumer, self._topic, range(self._partitions), deadline
        ):
            self._apply(message)
        log.info("replica caught up", extra={"counts": {"users": len(self._statuses)}})

    def poll(self, max_messages: int = 5000, owned: Container[int] = ()) -> int:
        """Apply what has arrived since the last call, without waiting.

        Records of `owned` partitions are skipped undecoded: the owner notes its own commits
        (`note`) and what it restored at assignment, so they would only repeat what it knows."""
        messages = self._consumer.consume(num_messages=max_messages, timeout=0)
        applied = 0
        for message in messages:
            if message.error() is None and message.partition() not in owned:
                self._apply(message)
                applied += 1
        return applied

    def _apply(self, message: Any) -> None:
        key = message.key() or b""
        if not key.startswith(_USER_PREFIX):
            return
        try:
            stream_id, stream = snapshot_of(message)
        except Exception as error:  # a bad snapshot must not stop the processor: keep the last
            log.warning(
                "replica ignores an unreadable snapshot",
                extra={"stream_id": key.decode("utf-8", errors="replace"),
                       "partition": message.partition(), "offset": message.offset(),
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
        self._consumer.close()
