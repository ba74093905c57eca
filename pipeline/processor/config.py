"""What one processor process needs to run: client properties, topic names, batch limits."""

from __future__ import annotations

import hashlib
import logging
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.processor import heap
from topics import CLIENT_LOGGER, deadletter

KafkaValue = str | int | float | bool | logging.Logger
"""A librdkafka property value (or `logger`, the Python logger its log lines go to)."""


_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ID_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_INSTANCE_ID = 100
"""Characters of a default instance id (a transactional-id fragment: `[A-Za-z0-9._-]`)."""
STABLE_OFFSETS_MARGIN_S = 15.0
"""Beyond the transaction timeout, how long an assignment waits for a previous owner's open
transaction: the coordinator aborts an expired one at its next check, every 10 s by default
(`transaction.abort.timed.out.transaction.cleanup.interval.ms`), plus 5 s."""


def default_instance_id(hostname: str | None = None) -> str:
    """This host's name (`socket.gethostname()` unless given) as an instance id: distinct per
    container or pod when a scaling tool starts several (`docker compose --scale`, Kubernetes
    replicas), and stable across restarts of the same container, so a restart still fences its
    predecessor. Two processes on one host need explicit, distinct ids.

    A host name that is already a valid fragment (up to 100 of `[A-Za-z0-9._-]`, a letter or
    digit first) is the id as it is; any other is sanitised (runs of other characters become
    `-`, cut) and suffixed with 8 hex digits of its sha256, so distinct host names give distinct
    ids even when their sanitised forms agree. An empty name gives `0`."""
    name = hostname if hostname is not None else socket.gethostname()
    if not name:
        return "0"
    if _ID_SAFE.match(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", errors="surrogatepass")).hexdigest()[:8]
    safe = _ID_UNSAFE.sub("-", name).strip("-._")[: MAX_INSTANCE_ID - 9]
    return f"{safe}-{digest}" if safe else digest


@dataclass(frozen=True)
class TopicNames:
    """The topics the processor reads and writes (see `topics.Catalogue`)."""

    commands: str
    events: str
    aggregates: str
    command_results: str
    commands_dlq: str


@dataclass(frozen=True)
class ProcessorConfig:
    """One processor process. `instance_id` names its slot: the transactional id derives from it,
    so a restarted process with the same slot fences (and aborts the open transaction of) the one
    it replaces at once, instead of leaving it open until `transaction_timeout_ms` expires.
    Processes running at once need distinct ids (see `default_instance_id`)."""

    kafka: dict[str, KafkaValue]
    topics: TopicNames
    prefix: str = "cqrs."
    instance_id: str = "0"
    group_id: str | None = None
    batch_size: int = 500
    batch_ms: int = 100
    """Longest a batch stays open. At light load a batch closes once idle (`batch_idle_ms`), so
    this cap only matters under a steady flow; there, tried at 20 ms against 100 in the bench's
    pipeline stage (docs/performance.md), smaller transactions cost the broker and the
    processor more per command and, on a saturated machine, queued commands for longer."""
    batch_idle_ms: int = 5
    """A batch holding commands closes once a wait this long brings no more (see `batching`)."""
    transaction_timeout_ms: int = 10_000
    session_timeout_ms: int = 6_000
    restore_timeout_s: float = 60.0
    max_resident_streams: int | None = None
    """At most this many stream states in memory, the least recently used of the others in a
    local file (`spill.BoundedStateStore`); `None`: every owned stream in memory."""
    spill_dir: Path | None = None
    """Where that file goes (the system's temporary directory by default)."""
    extra_consumer: dict[str, KafkaValue] = field(default_factory=dict)
    gc_young_threshold: int | None = heap.YOUNG_THRESHOLD
    """The process's young-generation threshold (see `heap.tune`; `None`: CPython's 700), set
    by `bootstrap.kafka_processor` for the process it runs in."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.batch_ms < 1:
            raise ValueError(f"batch_ms must be >= 1, got {self.batch_ms}")
        if self.batch_idle_ms < 0:
            raise ValueError(f"batch_idle_ms must be >= 0, got {self.batch_idle_ms}")
        if self.max_resident_streams is not None and self.max_resident_streams < 1:
            raise ValueError(
                f"max_resident_streams must be >= 1, got {self.max_resident_streams}")
        if self.gc_young_threshold is not None and self.gc_young_threshold < 1:
            raise ValueError(f"gc_young_threshold must be >= 1, got {self.gc_young_threshold}")

    @property
    def stable_offsets_timeout_s(self) -> float:
        """Longest wait at an assignment for the offsets a previous owner's transaction holds
        (a stalled zombie's: at most until the coordinator aborts it)."""
        return self.transaction_timeout_ms / 1000 + STABLE_OFFSETS_MARGIN_S

    @property
    def max_poll_interval_ms(self) -> int:
        """The commands consumer's `max.poll.interval.ms`: librdkafka's 300 s, or more when an
        assignment may take longer. An assignment runs inside a poll's rebalance callback, and
        a callback served by a non-blocking poll counts against the interval: the wait for
        stable offsets, then the restore, the rebuild of unreadable snapshots and the replica's
        read, each bounded by `restore_timeout_s`, plus a margin."""
        assignment_s = self.stable_offsets_timeout_s + 3 * self.restore_timeout_s + 30
        return max(300_000, int(assignment_s * 1000))

    @property
    def consumer_group(self) -> str:
        """The consumer group every processor of this namespace joins (they share partitions)."""
        return self.group_id or f"{self.prefix}processor"

    @property
    def transactional_id(self) -> str:
        """Stable per slot (`<prefix>processor-<instance_id>`), never random."""
        return f"{self.prefix}processor-{self.instance_id}"

    def command_consumer(self) -> dict[str, KafkaValue]:
        """The commands consumer: committed reads only, offsets committed only in transactions."""
        return {
            "logger": logging.getLogger(CLIENT_LOGGER),
            **self.kafka,
            "group.id": self.consumer_group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": self.session_timeout_ms,
            # Incremental cooperative rebalancing (KIP-429): a member joining or leaving moves
            # only the partitions that change owner; the others are neither revoked nor
            # restored, and keep being processed through the rebalance.
            "partition.assignment.strategy": "cooperative-sticky",
            "max.poll.interval.ms": self.max_poll_interval_ms,
            "client.id": f"{self.transactional_id}-commands",
            "fetch.message.max.bytes": deadletter.RECORD_LIMIT,
            **self.extra_consumer,
        }

    def reader(self, purpose: str) -> dict[str, KafkaValue]:
        """A group-less read_committed consumer (restore, replica): assigned, never subscribed.

        An assigned offset that no longer exists (records deleted before it) reads from the
        earliest one left, never from the end."""
        return {
            "logger": logging.getLogger(CLIENT_LOGGER),
            **self.kafka,
            "group.id": f"{self.consumer_group}-{purpose}-unused",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "client.id": f"{self.transactional_id}-{purpose}",
            "fetch.message.max.bytes": deadletter.RECORD_LIMIT,
        }

    def producer(self) -> dict[str, KafkaValue]:
        """The one transactional producer; `message.timeout.ms` may not exceed the txn timeout.

        `message.max.bytes` is the topics' record limit, so a record the broker would refuse is
        refused at `produce` (outputs are checked against it before, see `records.size_of`)."""
        return {
            "logger": logging.getLogger(CLIENT_LOGGER),
            **self.kafka,
            "transactional.id": self.transactional_id,
            "transaction.timeout.ms": self.transaction_timeout_ms,
            "message.timeout.ms": self.transaction_timeout_ms,
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.max.bytes": deadletter.RECORD_LIMIT,
            "client.id": self.transactional_id,
        }
