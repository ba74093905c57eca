"""The topic catalogue as data: each topic's name, partitions, configs and key format.

A `Catalogue` is pure (no I/O) and validated at construction: an illegal prefix or projector
name raises `InvalidTopicName`. The commands and events topics always get the same partition
count, since the processor writes a stream's events to the partition its command came from.
`topics.apply` makes a cluster match it, without ever altering an existing topic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from topics._limits import KAFKA_MAX_MESSAGE_BYTES
from topics.errors import InvalidTopicName

HOUR_MS = 60 * 60 * 1000
DAY_MS = 24 * HOUR_MS

COMMANDS_RETENTION_MS = 7 * DAY_MS
"""Commands are input, not history (the events are): a week covers a long processor outage."""
COMMAND_RESULTS_RETENTION_MS = 1 * HOUR_MS
"""Clients wait on a result for seconds; an hour is ample and keeps the topic small."""
DLQ_RETENTION_MS = 30 * DAY_MS
"""Time for a human to notice, fix the cause and replay what was dead-lettered."""
COMMANDS_MAX_MESSAGE_BYTES = KAFKA_MAX_MESSAGE_BYTES
"""Kafka's default, stated. Not lowered to `MAX_COMMAND_BYTES` on purpose: this limit bounds a
whole record *batch*, librdkafka batches up to `batch.size` (1,000,000 bytes) and fails rather
than splits a batch the broker refuses, so a lower value would fail honest small commands under
load. The per-command limit is checked at decode, where it yields a rejected result and a DLQ
record instead of a produce error."""
EVENTS_MIN_COMPACTION_LAG_MS = 1 * DAY_MS
"""Event keys are unique (`<stream_id>@<version>`), so compaction only removes exact re-writes
and tombstones; for a day after a write nothing is compacted, so a consumer up to a day behind
reads the log exactly as it was written."""
EVENTS_MAX_COMPACTION_LAG_MS = 7 * DAY_MS
"""Upper bound before a record must be compacted (KIP-354, rolls the active segment too):
tombstoned (erased, GDPR) events leave the disk within about a week (docs/erasure.md)."""
TOMBSTONE_RETENTION_MS = 1 * DAY_MS
"""`delete.retention.ms`: how long a tombstone stays readable after compaction, so a replay or
rebuild running in that window still sees the erasure."""
AGGREGATES_SEGMENT_MS = 1 * DAY_MS
"""Only closed segments are compacted; daily segments keep the snapshot log, and so a restore,
close to one record per stream (the default is a week)."""
RETAIN_FOREVER = "-1"
"""`retention.ms=-1`: irrelevant under `cleanup.policy=compact` alone, stated so that a
`compact,delete` set by mistake cannot silently start expiring history."""

MANAGER_FACTS_RETENTION_MS = 7 * DAY_MS
"""The managers' repartitioned facts are derived from the events (kept forever) and folded into
their tables (changelogs, compacted): a week covers a long outage of the managers."""
MANAGER_TABLES = ("orders", "cancel-on-deactivation", "late-order")
"""The process managers' Faust tables (docs/process-managers.md): the router's order → customer
map, then each manager's per-customer state; one compacted changelog topic each."""

MAX_TOPIC_NAME_LENGTH = 249
_LEGAL_NAME = re.compile(r"^[A-Za-z0-9._-]*$")
_PROJECTOR_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the catalogue wants it; `configs` are the topic-level overrides to set."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(hash=False)
    key_format: str
    purpose: str


def _min_insync_replicas(replication_factor: int) -> str:
    # With acks=all, a write survives one broker loss when 2 replicas confirm it; with fewer
    # than 3 replicas, requiring 2 would make a single broker outage stop all writes.
    return str(2 if replication_factor >= 3 else 1)


def _validate_name(name: str, what: str) -> None:
    if not _LEGAL_NAME.match(name):
        raise InvalidTopicName(
            f"{what} {name!r} may only contain ASCII letters, digits, '.', '_' and '-'")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise InvalidTopicName(
            f"{what} {name!r} is {len(name)} characters; Kafka allows {MAX_TOPIC_NAME_LENGTH}")


@dataclass(frozen=True)
class Catalogue:
    """Every topic of the pipeline under `prefix`; raises `InvalidTopicName` when one is illegal."""

    prefix: str = "cqrs."
    partitions: int = 6
    replication_factor: int = 1
    projectors: tuple[str, ...] = ("postgres", "search")

    def __post_init__(self) -> None:
        _validate_name(self.prefix, "topic prefix")
        if self.partitions < 1 or self.replication_factor < 1:
            raise ValueError("partitions and replication_factor must be at least 1")
        if len(set(self.projectors)) != len(self.projectors):
            raise InvalidTopicName(f"projector names repeat: {self.projectors}")
        for projector in self.projectors:
            if not _PROJECTOR_NAME.match(projector):
                raise InvalidTopicName(
                    f"projector name {projector!r} must match {_PROJECTOR_NAME.pattern}")
        for spec in self.specs():
            _validate_name(spec.name, "topic name")

    def _spec(self, suffix: str, configs: dict[str, str], key_format: str,
              purpose: str) -> TopicSpec:
        configs.setdefault("min.insync.replicas", _min_insync_replicas(self.replication_factor))
        return TopicSpec(self.prefix + suffix, self.partitions, self.replication_factor,
                         MappingProxyType(configs), key_format, purpose)

    def _deleting(self, suffix: str, retention_ms: int, key_format: str, purpose: str,
                  extra: Mapping[str, str] | None = None) -> TopicSpec:
        configs = {"cleanup.policy": "delete", "retention.ms": str(retention_ms), **(extra or {})}
        return self._spec(suffix, configs, key_format, purpose)

    @property
    def commands(self) -> TopicSpec:
        """Input from any Kafka client; same partition count as `events`."""
        return self._deleting(
            "commands", COMMANDS_RETENTION_MS, "stream id (<type>-<id>)",
            "commands from any producer, keyed so a stream has one partition",
            {"max.message.bytes": str(COMMANDS_MAX_MESSAGE_BYTES)})

    @property
    def events(self) -> TopicSpec:
        """The compacted, complete event log; same partition count as `commands`."""
        configs = {
            "cleanup.policy": "compact",
            "retention.ms": RETAIN_FOREVER,
            "min.compaction.lag.ms": str(EVENTS_MIN_COMPACTION_LAG_MS),
            "max.compaction.lag.ms": str(EVENTS_MAX_COMPACTION_LAG_MS),
            "delete.retention.ms": str(TOMBSTONE_RETENTION_MS),
        }
        return self._spec("events", configs, "<stream_id>@<version> (unique per event)",
                          "every event, forever; partition = its command's partition")

    @property
    def aggregates(self) -> TopicSpec:
        """Latest state and version of each stream, for restore in O(streams)."""
        configs = {
            "cleanup.policy": "compact",
            "retention.ms": RETAIN_FOREVER,
            "delete.retention.ms": str(TOMBSTONE_RETENTION_MS),
            "segment.ms": str(AGGREGATES_SEGMENT_MS),
            # A forgotten user's snapshot replaces its last one: the older, with the person in
            # it, must be compacted within the same bound as the stream's events.
            "max.compaction.lag.ms": str(EVENTS_MAX_COMPACTION_LAG_MS),
        }
        return self._spec("aggregates", configs, "stream id (<type>-<id>)",
                          "latest snapshot per stream, written with its events")

    @property
    def command_results(self) -> TopicSpec:
        """One result per command (accepted, rejected or duplicate), short-lived."""
        return self._deleting("command-results", COMMAND_RESULTS_RETENTION_MS,
                              "stream id, on the command's partition",
                              "the answer to every command; clients wait on it by command id")

    @property
    def commands_dlq(self) -> TopicSpec:
        """Commands the processor could not process, with headers naming source and error."""
        return self._deleting("commands.dlq", DLQ_RETENTION_MS, "the source record's key",
                              "commands that could not be processed, for inspection and replay")

    def projection_dlq(self, name: str) -> TopicSpec:
        """The dead letter topic of projector `name` (one of `projectors`)."""
        if name not in self.projectors:
            raise KeyError(f"no projector named {name!r}; known: {', '.join(self.projectors)}")
        return self._deleting(f"projection.{name}.dlq", DLQ_RETENTION_MS,
                              "the source event's key",
                              f"events the {name} projector could not apply")

    @property
    def manager_facts(self) -> TopicSpec:
        """The managers' repartition topic: facts of the events keyed by customer."""
        return self._deleting("managers.facts", MANAGER_FACTS_RETENTION_MS,
                              "the customer's stream id (user-<id>), on its murmur2 partition",
                              "facts of user and order events, repartitioned by customer")

    def manager_changelog(self, table: str) -> TopicSpec:
        """The changelog of the managers' table `table` (one of `MANAGER_TABLES`)."""
        if table not in MANAGER_TABLES:
            raise KeyError(f"no manager table {table!r}; known: {', '.join(MANAGER_TABLES)}")
        configs = {"cleanup.policy": "compact", "retention.ms": RETAIN_FOREVER,
                   "delete.retention.ms": str(TOMBSTONE_RETENTION_MS)}
        return self._spec(f"managers.{table}.changelog", configs,
                          "the table's key (order or customer stream id)",
                          f"the managers' {table} table, restored from here")

    @property
    def manager_dlq(self) -> TopicSpec:
        """Records the managers could not use (events or facts), with the DLQ headers."""
        return self._deleting("managers.dlq", DLQ_RETENTION_MS,
                              "the source record's key",
                              "records the process managers could not use")

    def manager_specs(self) -> list[TopicSpec]:
        """The process managers' topics: facts, the tables' changelogs, the DLQ."""
        return [self.manager_facts, *(self.manager_changelog(t) for t in MANAGER_TABLES),
                self.manager_dlq]

    def specs(self) -> list[TopicSpec]:
        """Every topic, commands first: the order `apply` creates and reports them in."""
        fixed = [self.commands, self.events, self.aggregates, self.command_results,
                 self.commands_dlq]
        return (fixed + [self.projection_dlq(name) for name in self.projectors]
                + self.manager_specs())
