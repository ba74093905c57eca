"""`apply` reports a topic whose replication differs from the catalogue's, and a broker's internal
topic (transaction state, group offsets) replicated less than the catalogue's topics."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from confluent_kafka.admin import ConfigResource, ConfigSource  # type: ignore[attr-defined]

from topics import Catalogue, TopicState, apply, internal_drift, topic_drift

CLUSTER = Catalogue(prefix="c.", partitions=3, replication_factor=3)


def _state(catalogue: Catalogue, fewest: int, most: int | None = None,
           **configs: str) -> TopicState:
    spec = catalogue.events
    return TopicState(spec, True, spec.partitions, fewest, {**spec.configs, **configs}, most)


def _settings(state: TopicState) -> dict[str, tuple[str, str]]:
    return {drift.setting: (drift.expected, drift.actual) for drift in topic_drift(state)}


def test_three_replicas_with_min_isr_two_is_as_specified() -> None:
    assert CLUSTER.events.configs["min.insync.replicas"] == "2"
    assert topic_drift(_state(CLUSTER, 3, 3)) == []


def test_fewer_replicas_than_the_catalogue_is_drift() -> None:
    assert _settings(_state(CLUSTER, 1, 1)) == {"replication factor": ("3", "1")}


def test_more_replicas_than_the_catalogue_is_drift_too() -> None:
    single = Catalogue(prefix="c.", partitions=3, replication_factor=1)
    assert _settings(_state(single, 3, 3)) == {"replication factor": ("1", "3")}


def test_partitions_replicated_unevenly_are_drift() -> None:
    [drift] = topic_drift(_state(CLUSTER, 2, 3))
    assert (drift.setting, drift.actual) == ("replication factor", "2 to 3 (by partition)")


def test_another_min_insync_replicas_is_drift() -> None:
    [drift] = topic_drift(_state(CLUSTER, 3, 3, **{"min.insync.replicas": "1"}))
    assert (drift.setting, drift.expected, drift.actual) == ("min.insync.replicas", "2", "1")
    assert str(drift) == "c.events: min.insync.replicas is 1, the catalogue wants 2"


def _topic(partitions: int, replicas: int) -> SimpleNamespace:
    return SimpleNamespace(error=None, partitions={
        number: SimpleNamespace(replicas=list(range(1, replicas + 1)), isrs=[])
        for number in range(partitions)})


def _metadata(**topics: SimpleNamespace) -> Any:
    return SimpleNamespace(topics=topics, brokers={})


def test_internal_topics_replicated_less_than_the_catalogue_are_drift() -> None:
    metadata = _metadata(__transaction_state=_topic(50, 1), __consumer_offsets=_topic(50, 3))
    [drift] = internal_drift(CLUSTER, metadata)
    assert (drift.topic, drift.expected, drift.actual) == ("__transaction_state", ">= 3", "1")


def test_internal_topics_as_replicated_or_not_yet_created_are_no_drift() -> None:
    assert internal_drift(CLUSTER, _metadata(__consumer_offsets=_topic(50, 3))) == []
    single = Catalogue(prefix="c.", replication_factor=1)
    assert internal_drift(single, _metadata(__transaction_state=_topic(50, 3))) == []


@dataclass
class _FakeAdmin:
    """What `apply` asks of an AdminClient: metadata, topic configs (no creations here)."""

    topics: dict[str, SimpleNamespace]
    configs: dict[str, dict[str, str]]
    created: list[str] = field(default_factory=list)

    def list_topics(self, timeout: float) -> Any:
        return _metadata(**self.topics)

    def describe_configs(self, resources: list[ConfigResource],
                         request_timeout: float) -> dict[ConfigResource, Future[Any]]:
        futures: dict[ConfigResource, Future[Any]] = {}
        for resource in resources:
            future: Future[Any] = Future()
            future.set_result({name: SimpleNamespace(value=value,
                                                     source=ConfigSource.DYNAMIC_TOPIC_CONFIG)
                               for name, value in self.configs[resource.name].items()})
            futures[resource] = future
        return futures


def test_apply_reports_replication_drift_and_creates_nothing() -> None:
    topics = {spec.name: _topic(spec.partitions, 3) for spec in CLUSTER.specs()}
    topics[CLUSTER.commands.name] = _topic(3, 1)
    topics["__transaction_state"] = _topic(50, 1)
    configs = {spec.name: dict(spec.configs) for spec in CLUSTER.specs()}
    configs[CLUSTER.events.name]["min.insync.replicas"] = "1"
    report = apply(_FakeAdmin(topics, configs), CLUSTER)  # type: ignore[arg-type]
    assert report.created == ()
    assert {(drift.topic, drift.setting) for drift in report.drift} == {
        (CLUSTER.commands.name, "replication factor"),
        (CLUSTER.events.name, "min.insync.replicas"),
        ("__transaction_state", "replication factor (the brokers' setting)"),
    }
    assert not report.ok
