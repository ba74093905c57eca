"""Make a cluster match the catalogue: create what is missing, report drift, never alter or delete.

`apply` is idempotent: run twice, the second run creates nothing. An existing topic that differs
from its spec (partitions, replication factor, a catalogue config such as min.insync.replicas,
co-partitioning of commands and events) is reported as `Drift`, never changed: fixing it means
migrating data, a human decision. So is a broker's internal topic (transaction state, group
offsets) with fewer replicas than the catalogue's topics: exactly-once needs it to survive as long.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from confluent_kafka import KafkaError, KafkaException

# confluent-kafka ships types but re-exports these from private modules without `__all__`.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
)

from topics._catalogue import Catalogue, TopicSpec
from topics.errors import AdminError, BrokerUnavailable, TopicCreationFailed

ADMIN_TIMEOUT_S = 10.0

_HOW_TO_START = (
    "start the native services with `cqrs services up` and `eval \"$(cqrs services env)\"`, "
    "or set CQRS_KAFKA_BOOTSTRAP (bootstrap.servers) to a reachable broker")


@dataclass(frozen=True)
class Drift:
    """One way an existing topic differs from its spec; `setting` is a config name or a field."""

    topic: str
    setting: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.setting} is {self.actual}, the catalogue wants {self.expected}"


@dataclass(frozen=True)
class TopicState:
    """A catalogue topic as the broker reports it; the counts are None when it does not exist.

    `configs` holds the broker's value of every config the spec sets, plus every other
    topic-level override found on the topic.
    """

    spec: TopicSpec
    exists: bool
    partitions: int | None = None
    replication_factor: int | None = None
    """The fewest replicas of any partition (`max_replication_factor`: the most; None: as few)."""
    configs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    max_replication_factor: int | None = None


@dataclass(frozen=True)
class ApplyReport:
    """What `apply` did (or, with `dry_run`, would do): created, left as they were, drift."""

    created: tuple[str, ...]
    unchanged: tuple[str, ...]
    drift: tuple[Drift, ...]
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """True when every catalogue topic exists (or would) exactly as specified."""
        return not self.drift


def _metadata(admin: AdminClient, timeout: float) -> ClusterMetadata:
    try:
        return admin.list_topics(timeout=timeout)
    except KafkaException as error:
        raise BrokerUnavailable(
            f"no Kafka broker answered within {timeout:g}s ({error.args[0]}); {_HOW_TO_START}"
        ) from error


def _await_visible(admin: AdminClient, names: Sequence[str], timeout: float) -> ClusterMetadata:
    """Metadata once every topic in `names` shows up with its partitions.

    A topic is in the controller's log when `create_topics` returns, but brokers apply the
    change asynchronously; until they do, clients get UNKNOWN_TOPIC_OR_PARTITION.
    """
    deadline = time.monotonic() + timeout
    while True:
        metadata = _metadata(admin, timeout)
        waiting = [name for name in names if not _visible(metadata, name)]
        if not waiting:
            return metadata
        if time.monotonic() > deadline:
            raise AdminError(f"created, but not visible in metadata after {timeout:g}s: "
                             + ", ".join(waiting))
        time.sleep(0.1)


def _visible(metadata: ClusterMetadata, name: str) -> bool:
    topic = metadata.topics.get(name)
    return topic is not None and topic.error is None and bool(topic.partitions)


def _exists(metadata: ClusterMetadata, name: str) -> bool:
    topic = metadata.topics.get(name)
    return topic is not None and (
        topic.error is None or topic.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART)


def _broker_configs(admin: AdminClient, names: Sequence[str],
                    timeout: float) -> dict[str, dict[str, ConfigEntry]]:
    if not names:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    futures = admin.describe_configs(resources, request_timeout=timeout)
    try:
        return {resource.name: future.result(timeout=timeout + 5)
                for resource, future in futures.items()}
    except KafkaException as error:
        raise AdminError(f"describe_configs failed: {error.args[0]}") from error


def _state(spec: TopicSpec, metadata: ClusterMetadata,
           entries: Mapping[str, ConfigEntry]) -> TopicState:
    partitions = metadata.topics[spec.name].partitions
    replicas = [len(partition.replicas) for partition in partitions.values()]
    configs = {name: str(entry.value) for name, entry in entries.items()
               if name in spec.configs or entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG}
    return TopicState(spec, True, len(partitions), min(replicas, default=0),
                      MappingProxyType(dict(sorted(configs.items()))), max(replicas, default=0))


def _observe(admin: AdminClient, specs: Iterable[TopicSpec], metadata: ClusterMetadata,
             timeout: float) -> list[TopicState]:
    specs = list(specs)
    present = [spec.name for spec in specs if _exists(metadata, spec.name)]
    entries = _broker_configs(admin, present, timeout)
    return [_state(spec, metadata, entries[spec.name]) if spec.name in entries
            else TopicState(spec, False) for spec in specs]


def describe(admin: AdminClient, catalogue: Catalogue, *,
             timeout: float = ADMIN_TIMEOUT_S) -> list[TopicState]:
    """Every catalogue topic as the broker reports it, in catalogue order. Changes nothing."""
    return _observe(admin, catalogue.specs(), _metadata(admin, timeout), timeout)


def _same_value(setting: str, expected: str, actual: str | None) -> bool:
    if setting == "cleanup.policy" and actual is not None:
        # "compact,delete" and "delete,compact" are the same policy.
        return set(expected.split(",")) == set(actual.replace(" ", "").split(","))
    return expected == actual


def topic_drift(state: TopicState) -> list[Drift]:
    """How one existing topic differs from its spec (nothing for a missing topic)."""
    if not state.exists:
        return []
    spec, found = state.spec, []
    if state.partitions != spec.partitions:
        found.append(Drift(spec.name, "partitions", str(spec.partitions), str(state.partitions)))
    fewest = state.replication_factor
    most = fewest if state.max_replication_factor is None else state.max_replication_factor
    if fewest != spec.replication_factor or most != spec.replication_factor:
        replicas = str(fewest) if fewest == most else f"{fewest} to {most} (by partition)"
        found.append(Drift(spec.name, "replication factor", str(spec.replication_factor),
                           replicas))
    for setting, expected in spec.configs.items():
        actual = state.configs.get(setting)
        if not _same_value(setting, expected, actual):
            found.append(Drift(spec.name, setting, expected, str(actual)))
    return found


INTERNAL_TOPICS = ("__transaction_state", "__consumer_offsets")
"""The brokers' topics that transactions and consumer groups depend on; created by the brokers
(with `transaction.state.log.replication.factor`, `offsets.topic.replication.factor`)."""


def internal_drift(catalogue: Catalogue, metadata: ClusterMetadata) -> list[Drift]:
    """Drift when an internal topic exists with fewer replicas than the catalogue's topics: a
    node's loss would then lose transaction outcomes or group offsets that the catalogue's
    replication was meant to keep. A missing one is created by the brokers on first use."""
    found = []
    for name in INTERNAL_TOPICS:
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None or not topic.partitions:
            continue
        fewest = min(len(partition.replicas) for partition in topic.partitions.values())
        if fewest < catalogue.replication_factor:
            found.append(Drift(name, "replication factor (the brokers' setting)",
                               f">= {catalogue.replication_factor}", str(fewest)))
    return found


def copartition_drift(catalogue: Catalogue, states: Sequence[TopicState]) -> list[Drift]:
    """Drift when commands and events exist with different partition counts."""
    by_name = {state.spec.name: state for state in states}
    commands, events = by_name.get(catalogue.commands.name), by_name.get(catalogue.events.name)
    if not (commands and events and commands.exists and events.exists):
        return []
    if commands.partitions == events.partitions:
        return []
    return [Drift(events.spec.name, "co-partitioning",
                  f"{commands.partitions} partitions, as {commands.spec.name}",
                  f"{events.partitions} partitions")]


def _blocked_by_copartitioning(catalogue: Catalogue,
                               states: Sequence[TopicState]) -> list[Drift]:
    """Refuse to create one of commands/events beside a sibling with another partition count.

    Partitions can be added but never removed, so creating it would make the mismatch permanent.
    """
    by_name = {state.spec.name: state for state in states}
    pair = (catalogue.commands, catalogue.events)
    found = []
    for spec, sibling in (pair, pair[::-1]):
        mine, theirs = by_name[spec.name], by_name[sibling.name]
        if not mine.exists and theirs.exists and theirs.partitions != spec.partitions:
            found.append(Drift(spec.name, "co-partitioning",
                               f"{spec.partitions} partitions, as {sibling.name}",
                               f"missing, not created: {sibling.name} has {theirs.partitions}"))
    return found


def _fix_configs(admin: AdminClient, catalogue: Catalogue, timeout: float) -> None:
    """Set every catalogue config that drifted on an existing topic to the catalogue's value."""
    states = _observe(admin, catalogue.specs(), _metadata(admin, timeout), timeout)
    resources = []
    for state in states:
        settings = {drift.setting for drift in topic_drift(state)} & set(state.spec.configs)
        if settings:
            resources.append(ConfigResource(
                ConfigResource.Type.TOPIC, state.spec.name, incremental_configs=[
                    ConfigEntry(setting, state.spec.configs[setting],
                                incremental_operation=AlterConfigOpType.SET)
                    for setting in sorted(settings)]))
    if not resources:
        return
    for resource, future in admin.incremental_alter_configs(resources).items():
        try:
            future.result(timeout=timeout)
        except KafkaException as error:
            raise AdminError(f"could not set the configs of {resource.name}: "
                             f"{error.args[0]}") from error


def _create(admin: AdminClient, specs: Sequence[TopicSpec],
            timeout: float) -> tuple[list[str], list[str]]:
    """Create `specs`; returns (created, already there: another client won the race)."""
    if not specs:
        return [], []
    new_topics = [NewTopic(spec.name, num_partitions=spec.partitions,
                           replication_factor=spec.replication_factor, config=dict(spec.configs))
                  for spec in specs]
    futures = admin.create_topics(new_topics, operation_timeout=timeout, request_timeout=timeout)
    created, raced, failed = list[str](), list[str](), list[str]()
    for name, future in futures.items():
        try:
            future.result(timeout=timeout + 5)
            created.append(name)
        except KafkaException as error:
            kafka_error = error.args[0]
            if kafka_error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                raced.append(name)
            else:
                failed.append(f"{name}: {kafka_error.str()}")
    if failed:
        raise TopicCreationFailed("could not create " + "; ".join(failed))
    return created, raced


def apply(admin: AdminClient, catalogue: Catalogue, *, dry_run: bool = False,
          timeout: float = ADMIN_TIMEOUT_S, fix_configs: bool = False) -> ApplyReport:
    """Create the missing catalogue topics and report drift on existing ones; never alter one,
    unless `fix_configs`: then the topic-level configs that drifted are set to the catalogue's
    first (`incremental_alter_configs`), and what still drifts is reported (partitions and
    replication are never changed: they move data, an operator's decision).

    Idempotent, and safe to run concurrently: a topic another client created first is checked
    like any existing one. Returns once every created topic is visible in the metadata, so
    clients started next do not see UNKNOWN_TOPIC_OR_PART. With `dry_run`, `created` lists what
    would be created and nothing changes.
    """
    if fix_configs and not dry_run:
        _fix_configs(admin, catalogue, timeout)
    metadata = _metadata(admin, timeout)
    states = _observe(admin, catalogue.specs(), metadata, timeout)
    blocked = _blocked_by_copartitioning(catalogue, states)
    blocked_names = {drift.topic for drift in blocked}
    missing = [state.spec for state in states
               if not state.exists and state.spec.name not in blocked_names]
    existing = [state for state in states if state.exists]
    if dry_run:
        created = [spec.name for spec in missing]
    else:
        created, raced = _create(admin, missing, timeout)
        if created or raced:
            metadata = _await_visible(admin, [*created, *raced], timeout)
            existing += _observe(admin, [spec for spec in missing if spec.name in raced],
                                 metadata, timeout)
    drift = [*blocked, *copartition_drift(catalogue, existing),
             *internal_drift(catalogue, metadata)]
    drift += [found for state in existing for found in topic_drift(state)]
    drifted = {found.topic for found in drift}
    unchanged = [state.spec.name for state in existing if state.spec.name not in drifted]
    return ApplyReport(tuple(created), tuple(unchanged), tuple(drift), dry_run)
