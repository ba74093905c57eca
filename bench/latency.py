"""Per-command latency, stamped at every stage, and the per-hop budget.

Each followed CreateUser command is stamped (`time.time()`, all in this one process) when it is:

- `issued`: handed to the producer;
- `processor_commit`: its UserCreated event reaches a `read_committed` consumer of the events
  topic (so after the processor's transaction committed: what the projectors can read);
- `postgres`: its row is found in `users` (the projector's commit; in PostgreSQL, committed is
  visible, so one stamp is both);
- `search_commit`: the search projector's checkpoint of the event's partition covers the
  event's offset (its state index read by a realtime `mget`: the document was written by that
  batch's bulk just before);
- `searchable`: a `terms` search on the alias finds it (after an index refresh).

Each stamp is taken by a poller, so it is late by up to its interval (`POLL_S`, recorded in the
results); the events observer long-polls, late by up to `OBSERVER_FETCH_WAIT_MS` at worst.
A hop's percentiles are over the commands that have both stamps; percentiles do not add up.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from bench.workload import QUIET

STAMPS = ("issued", "processor_commit", "postgres", "search_commit", "searchable")
HOPS: dict[str, tuple[str, str]] = {
    "issue_to_processor_commit": ("issued", "processor_commit"),
    "processor_commit_to_postgres": ("processor_commit", "postgres"),
    "processor_commit_to_search_commit": ("processor_commit", "search_commit"),
    "search_commit_to_searchable": ("search_commit", "searchable"),
    "issue_to_postgres": ("issued", "postgres"),
    "issue_to_searchable": ("issued", "searchable"),
}
"""Hop name → (from stamp, to stamp); the last two are the totals the targets are about."""
POLL_S = {"postgres": 0.01, "search_commit": 0.01, "searchable": 0.05}
"""Seconds between two polls of each sink (a stamp is late by up to one interval). A search of
up to 2,000 pending ids is work for the Elasticsearch being measured, and the refresh it waits
for is a second: it is polled less often."""
OBSERVER_FETCH_WAIT_MS = 10
"""The events observer's `fetch.wait.max.ms`: the broker answers a fetch as soon as committed
records arrive (long poll), and after this at the latest."""

Position = tuple[int, int]
"""(partition, offset) of an event on the events topic."""


class Stamps:
    """The stamps of the followed commands (the first time each is seen wins); thread-safe.

    The ids still pending at each stage are kept apart, so a poll costs what is pending, not
    what was ever followed."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._at: dict[str, dict[str, float]] = {}
        self._pending: dict[str, dict[str, None]] = {stage: {} for stage in STAMPS[1:]}
        self._positions: dict[str, Position] = {}
        self._lock = threading.Lock()

    def follow(self, user_id: str) -> None:
        """Stamp `user_id` as issued, now."""
        with self._lock:
            self._at[user_id] = {"issued": self.clock()}
            for pending in self._pending.values():
                pending[user_id] = None

    def stamp(self, user_ids: Iterable[str], stage: str, at: float) -> None:
        with self._lock:
            pending = self._pending[stage]
            for user_id in user_ids:
                if user_id in pending:
                    del pending[user_id]
                    self._at[user_id][stage] = at

    def committed(self, user_id: str, position: Position, at: float) -> None:
        """The event of `user_id` is readable at `position` (the processor committed it)."""
        with self._lock:
            if user_id in self._pending["processor_commit"]:
                del self._pending["processor_commit"][user_id]
                self._at[user_id]["processor_commit"] = at
                self._positions[user_id] = position

    def pending(self, stage: str) -> list[str]:
        """Followed ids not yet stamped `stage`, in the order they were issued."""
        with self._lock:
            return list(self._pending[stage])

    def positions(self, user_ids: Iterable[str]) -> dict[str, Position]:
        with self._lock:
            return {i: self._positions[i] for i in user_ids if i in self._positions}

    def followed(self) -> int:
        with self._lock:
            return len(self._at)

    def complete(self) -> bool:
        with self._lock:
            return not any(self._pending.values())

    def hop(self, start: str, end: str) -> list[float]:
        """Seconds from `start` to `end` of every followed id that has both."""
        with self._lock:
            return [at[end] - at[start] for at in self._at.values() if start in at and end in at]

    def missing(self, stage: str) -> int:
        with self._lock:
            return len(self._pending[stage])


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """count, p50/p95/p99/max of `values` (seconds) in milliseconds."""
    if not values:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)
    cut = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else (
        ordered * 99)
    return {"count": len(ordered), "p50_ms": round(cut[49] * 1000, 1),
            "p95_ms": round(cut[94] * 1000, 1), "p99_ms": round(cut[98] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1)}


def budget(stamps: Stamps) -> dict[str, Any]:
    """Every hop's percentiles, and how many followed commands lack its end stamp."""
    return {name: {**percentiles(stamps.hop(start, end)), "missing": stamps.missing(end)}
            for name, (start, end) in HOPS.items()}


class Poller(threading.Thread):
    """Every `interval`, asks `find` which of the ids pending at `stage` it sees; stamps them
    with the time its answer came back."""

    def __init__(self, stamps: Stamps, stage: str, find: Callable[[list[str]], set[str]],
                 interval: float) -> None:
        super().__init__(daemon=True, name=f"latency-{stage}")
        self.stamps, self.stage, self.interval = stamps, stage, interval
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._find = find

    def run(self) -> None:
        try:
            while not self.done.is_set():
                pending = self.stamps.pending(self.stage)
                if pending:
                    found = self._find(pending)
                    self.stamps.stamp(found, self.stage, self.stamps.clock())
                self.done.wait(self.interval)
        except BaseException as error:  # reported by the stage, not lost in a thread
            self.error = error


class EventsObserver(threading.Thread):
    """A `read_committed` consumer of the events topic from its current end: stamps each
    followed user's event as committed, with its position, when it arrives."""

    def __init__(self, stamps: Stamps, kafka: dict[str, Any], topic: str,
                 partitions: int) -> None:
        super().__init__(daemon=True, name="latency-events")
        self.stamps = stamps
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._consumer = Consumer({
            **kafka, "group.id": f"{topic}.latency-observer", "enable.auto.commit": False,
            "isolation.level": "read_committed", "fetch.wait.max.ms": OBSERVER_FETCH_WAIT_MS,
            "log_level": QUIET})
        # From the end as it is now, before any followed command is issued: nothing is missed
        # (explicit offsets, no reset racing the first events).
        ends = [TopicPartition(topic, p, self._consumer.get_watermark_offsets(
            TopicPartition(topic, p), timeout=10, cached=False)[1]) for p in range(partitions)]
        self._consumer.assign(ends)

    def run(self) -> None:
        try:
            while not self.done.is_set():
                message = self._consumer.poll(0.05)
                if message is None or message.error() is not None:
                    continue
                user_id = user_of_key(message.key())
                if user_id is not None:
                    position = (message.partition() or 0, message.offset() or 0)
                    self.stamps.committed(user_id, position, self.stamps.clock())
        except BaseException as error:
            self.error = error
        finally:
            self._consumer.close()


def user_of_key(key: bytes | None) -> str | None:
    """`l42` from the event key `user-l42@1` (`None` for any other key)."""
    if not key or not key.startswith(b"user-"):
        return None
    return key[5:].partition(b"@")[0].decode(errors="replace")


def covered(positions: dict[str, Position], checkpoints: dict[int, int]) -> set[str]:
    """The ids whose event's offset is at or below its partition's checkpoint."""
    return {user_id for user_id, (partition, offset) in positions.items()
            if checkpoints.get(partition, -1) >= offset}
