"""The topic catalogue: names under the prefix, co-partitioning, configs, validation."""

from __future__ import annotations

import pytest

from topics import (
    COMMAND_RESULTS_RETENTION_MS,
    COMMANDS_RETENTION_MS,
    DLQ_RETENTION_MS,
    Catalogue,
    InvalidTopicName,
    TopicsError,
    TopicState,
    copartition_drift,
    limits,
    topic_drift,
)


def test_every_topic_is_under_the_prefix() -> None:
    catalogue = Catalogue(prefix="shop.")
    assert [spec.name for spec in catalogue.specs()] == [
        "shop.commands", "shop.events", "shop.aggregates", "shop.command-results",
        "shop.commands.dlq", "shop.projection.postgres.dlq", "shop.projection.search.dlq",
        "shop.managers.facts", "shop.managers.orders.changelog",
        "shop.managers.cancel-on-deactivation.changelog",
        "shop.managers.late-order.changelog", "shop.managers.dlq",
    ]


def test_the_managers_changelogs_are_compacted_and_their_facts_expire() -> None:
    catalogue = Catalogue(partitions=4, replication_factor=3)
    for spec in catalogue.manager_specs():
        assert spec.partitions == 4
        assert spec.replication_factor == 3
        assert spec.configs["min.insync.replicas"] == "2"
    assert catalogue.manager_changelog("late-order").configs["cleanup.policy"] == "compact"
    assert catalogue.manager_facts.configs["cleanup.policy"] == "delete"
    with pytest.raises(KeyError):
        catalogue.manager_changelog("nope")


def test_defaults() -> None:
    catalogue = Catalogue()
    assert catalogue.commands.name == "cqrs.commands"
    assert {spec.partitions for spec in catalogue.specs()} == {6}
    assert {spec.replication_factor for spec in catalogue.specs()} == {1}


@pytest.mark.parametrize("partitions", [1, 3, 12])
def test_events_are_copartitioned_with_commands(partitions: int) -> None:
    catalogue = Catalogue(partitions=partitions)
    assert catalogue.events.partitions == catalogue.commands.partitions == partitions


def test_events_are_compacted_and_kept() -> None:
    configs = Catalogue().events.configs
    assert configs["cleanup.policy"] == "compact"
    assert configs["retention.ms"] == "-1"
    assert int(configs["min.compaction.lag.ms"]) > 0
    assert int(configs["max.compaction.lag.ms"]) > int(configs["min.compaction.lag.ms"])
    assert "<stream_id>@<version>" in Catalogue().events.key_format


def test_aggregates_are_compacted_by_stream_id() -> None:
    spec = Catalogue().aggregates
    assert spec.configs["cleanup.policy"] == "compact"
    assert spec.key_format.startswith("stream id")
    # An erased user's older snapshots go within the bound its events do (docs/erasure.md).
    assert spec.configs["max.compaction.lag.ms"] == Catalogue().events.configs[
        "max.compaction.lag.ms"]


@pytest.mark.parametrize(
    ("attribute", "retention_ms"),
    [("commands", COMMANDS_RETENTION_MS), ("command_results", COMMAND_RESULTS_RETENTION_MS),
     ("commands_dlq", DLQ_RETENTION_MS)],
)
def test_deleting_topics_have_their_retention(attribute: str, retention_ms: int) -> None:
    spec = getattr(Catalogue(), attribute)
    assert spec.configs["cleanup.policy"] == "delete"
    assert spec.configs["retention.ms"] == str(retention_ms)


def test_retentions_are_the_documented_durations() -> None:
    day = 24 * 3600 * 1000
    catalogue = Catalogue()
    retention = {spec.name: int(spec.configs["retention.ms"]) for spec in catalogue.specs()}
    assert retention[catalogue.commands.name] == 7 * day
    assert retention[catalogue.command_results.name] == day // 24
    assert retention[catalogue.projection_dlq("search").name] == 30 * day


def test_commands_state_their_max_message_bytes() -> None:
    assert int(Catalogue().commands.configs["max.message.bytes"]) >= 1_000_000


def test_one_dlq_per_projector() -> None:
    catalogue = Catalogue(prefix="p.", projectors=("postgres", "search", "audit"))
    dlqs = [spec for spec in catalogue.specs() if spec.name.startswith("p.projection.")]
    assert [spec.name for spec in dlqs] == [
        "p.projection.postgres.dlq", "p.projection.search.dlq", "p.projection.audit.dlq"]
    assert all(spec.configs["retention.ms"] == str(DLQ_RETENTION_MS) for spec in dlqs)
    assert catalogue.projection_dlq("audit") == dlqs[2]


def test_unknown_projector_has_no_dlq() -> None:
    with pytest.raises(KeyError, match="nope"):
        Catalogue().projection_dlq("nope")


@pytest.mark.parametrize("prefix", ["bad prefix.", "ü.", "a/b.", "x" * 240])
def test_illegal_prefix_is_rejected(prefix: str) -> None:
    with pytest.raises(InvalidTopicName):
        Catalogue(prefix=prefix)


@pytest.mark.parametrize("prefix", ["", "cqrs.", "team_a-prod.", "x" * 200])
def test_legal_prefix_is_accepted(prefix: str) -> None:
    assert Catalogue(prefix=prefix).commands.name == prefix + "commands"


@pytest.mark.parametrize("projectors", [("Bad",), ("a.b",), ("x", "x"), ("",)])
def test_illegal_projector_names_are_rejected(projectors: tuple[str, ...]) -> None:
    with pytest.raises(InvalidTopicName):
        Catalogue(projectors=projectors)


def test_invalid_topic_name_is_a_topics_error_and_a_value_error() -> None:
    assert issubclass(InvalidTopicName, TopicsError)
    assert issubclass(InvalidTopicName, ValueError)


@pytest.mark.parametrize(("partitions", "replication_factor"), [(0, 1), (1, 0)])
def test_counts_must_be_positive(partitions: int, replication_factor: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Catalogue(partitions=partitions, replication_factor=replication_factor)


def test_min_insync_replicas_allows_one_broker_down() -> None:
    assert Catalogue(replication_factor=1).events.configs["min.insync.replicas"] == "1"
    assert Catalogue(replication_factor=3).events.configs["min.insync.replicas"] == "2"


def test_specs_are_immutable() -> None:
    spec = Catalogue().commands
    with pytest.raises(TypeError):
        spec.configs["retention.ms"] = "1"  # type: ignore[index]


def _existing(catalogue: Catalogue, attribute: str, **changes: object) -> TopicState:
    spec = getattr(catalogue, attribute)
    fields: dict[str, object] = {"exists": True, "partitions": spec.partitions,
                                 "replication_factor": spec.replication_factor,
                                 "configs": dict(spec.configs)}
    fields.update(changes)
    return TopicState(spec, **fields)  # type: ignore[arg-type]


def test_a_topic_as_specified_has_no_drift() -> None:
    catalogue = Catalogue()
    assert all(topic_drift(_existing(catalogue, name)) == []
               for name in ("commands", "events", "aggregates"))
    assert topic_drift(TopicState(catalogue.events, exists=False)) == []


def test_drift_names_the_setting() -> None:
    catalogue = Catalogue()
    configs = {**catalogue.events.configs, "cleanup.policy": "delete"}
    state = _existing(catalogue, "events", partitions=3, replication_factor=0, configs=configs)
    assert {drift.setting for drift in topic_drift(state)} == {
        "partitions", "replication factor", "cleanup.policy"}


def test_events_that_also_delete_are_drift() -> None:
    spec = Catalogue().events
    state = TopicState(spec, True, 6, 1, {**spec.configs, "cleanup.policy": "delete,compact"})
    [drift] = topic_drift(state)
    assert (drift.setting, drift.actual) == ("cleanup.policy", "delete,compact")


def test_commands_and_events_with_different_counts_drift() -> None:
    catalogue = Catalogue()
    states = [_existing(catalogue, "commands", partitions=3), _existing(catalogue, "events")]
    [drift] = copartition_drift(catalogue, states)
    assert drift.setting == "co-partitioning"
    assert drift.topic == catalogue.events.name


def test_the_kafka_record_limit_is_defined_once_in_the_limits() -> None:
    assert limits.KAFKA_MAX_MESSAGE_BYTES == 1024 * 1024 + 12
    assert int(Catalogue().commands.configs["max.message.bytes"]) == limits.KAFKA_MAX_MESSAGE_BYTES
