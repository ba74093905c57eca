"""`apply` on the real broker: creates the catalogue, is idempotent, reports drift, alters none."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
)
from typer.testing import CliRunner

from topics import Catalogue, apply, describe

TIMEOUT = 15.0


@pytest.fixture
def admin(kafka_config: dict[str, str], topic_prefix: str) -> Iterator[AdminClient]:
    """An admin client; every topic under the test's prefix is deleted afterwards."""
    config: dict[str, str | int | float | bool] = {**kafka_config}
    client = AdminClient(config)
    yield client
    # Listed names can lag behind a creation, so delete the catalogue's names too.
    listed = client.list_topics(timeout=TIMEOUT).topics
    names = {name for name in listed if name.startswith(topic_prefix)}
    names |= {spec.name for spec in Catalogue(prefix=topic_prefix).specs()}
    for future in client.delete_topics(sorted(names), operation_timeout=TIMEOUT).values():
        try:
            future.result(timeout=TIMEOUT)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise


@pytest.fixture
def catalogue(topic_prefix: str) -> Catalogue:
    return Catalogue(prefix=topic_prefix, partitions=4)


def _broker_configs(admin: AdminClient, name: str) -> dict[str, str]:
    [future] = admin.describe_configs([ConfigResource("topic", name)]).values()
    return {key: entry.value for key, entry in future.result(timeout=TIMEOUT).items()}


def _partitions(admin: AdminClient, name: str) -> int:
    return len(admin.list_topics(name, timeout=TIMEOUT).topics[name].partitions)


def _create(admin: AdminClient, name: str, partitions: int, **configs: str) -> None:
    topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=configs)
    admin.create_topics([topic])[name].result(timeout=TIMEOUT)
    # As another process would: it exists before apply starts, so wait until brokers show it.
    deadline = time.monotonic() + TIMEOUT
    while not admin.list_topics(name, timeout=TIMEOUT).topics[name].partitions:
        assert time.monotonic() < deadline, f"{name} never became visible"
        time.sleep(0.1)


def test_apply_creates_every_topic_with_the_catalogue_configs(
        admin: AdminClient, catalogue: Catalogue) -> None:
    report = apply(admin, catalogue)
    assert report.ok
    assert list(report.created) == [spec.name for spec in catalogue.specs()]
    for spec in catalogue.specs():
        reported = _broker_configs(admin, spec.name)
        assert {key: reported[key] for key in spec.configs} == dict(spec.configs), spec.name
        assert _partitions(admin, spec.name) == 4


def test_second_apply_creates_nothing(admin: AdminClient, catalogue: Catalogue) -> None:
    apply(admin, catalogue)
    again = apply(admin, catalogue)
    assert again.created == ()
    assert again.drift == ()
    assert list(again.unchanged) == [spec.name for spec in catalogue.specs()]
    assert all(state.exists for state in describe(admin, catalogue))


def test_dry_run_creates_nothing(admin: AdminClient, catalogue: Catalogue) -> None:
    report = apply(admin, catalogue, dry_run=True)
    assert len(report.created) == len(catalogue.specs())
    assert not any(state.exists for state in describe(admin, catalogue))


def test_concurrent_applies_both_succeed(admin: AdminClient, catalogue: Catalogue) -> None:
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: apply(admin, catalogue), range(2)))
    assert all(report.ok for report in reports)
    created = [name for report in reports for name in report.created]
    assert sorted(created) == sorted(spec.name for spec in catalogue.specs())


def test_wrong_partition_count_is_drift_and_left_alone(
        admin: AdminClient, catalogue: Catalogue) -> None:
    _create(admin, catalogue.commands.name, 3)
    report = apply(admin, catalogue)
    assert not report.ok
    found = {(drift.topic, drift.setting) for drift in report.drift}
    assert (catalogue.commands.name, "partitions") in found
    # The events topic is not created beside a commands topic it could never match.
    assert (catalogue.events.name, "co-partitioning") in found
    assert catalogue.events.name not in report.created
    assert catalogue.aggregates.name in report.created
    assert _partitions(admin, catalogue.commands.name) == 3
    assert catalogue.events.name not in admin.list_topics(timeout=TIMEOUT).topics


def test_wrong_cleanup_policy_is_drift_and_left_alone(
        admin: AdminClient, catalogue: Catalogue) -> None:
    _create(admin, catalogue.events.name, 4, **{"cleanup.policy": "delete"})
    report = apply(admin, catalogue)
    [drift] = [drift for drift in report.drift if drift.setting == "cleanup.policy"]
    assert (drift.topic, drift.expected, drift.actual) == (
        catalogue.events.name, "compact", "delete")
    assert catalogue.events.name not in report.unchanged
    assert _broker_configs(admin, catalogue.events.name)["cleanup.policy"] == "delete"


def test_fix_configs_sets_drifted_configs_and_leaves_partitions(
        admin: AdminClient, catalogue: Catalogue) -> None:
    """An upgrade that adds a config to a topic (the aggregates' max.compaction.lag.ms, say):
    `fix_configs` sets it; a partition count that drifted is still only reported."""
    wanted = dict(catalogue.aggregates.configs)
    older = {k: v for k, v in wanted.items() if k != "max.compaction.lag.ms"}
    _create(admin, catalogue.aggregates.name, 4, **{**older, "retention.ms": "1000"})
    _create(admin, catalogue.commands.name, 3)
    report = apply(admin, catalogue, fix_configs=True)
    drifted = {(drift.topic, drift.setting) for drift in report.drift}
    assert (catalogue.commands.name, "partitions") in drifted
    assert not any(topic == catalogue.aggregates.name for topic, _ in drifted), report.drift
    configs = _broker_configs(admin, catalogue.aggregates.name)
    assert configs["max.compaction.lag.ms"] == wanted["max.compaction.lag.ms"]
    assert configs["retention.ms"] == wanted["retention.ms"]
    assert _partitions(admin, catalogue.commands.name) == 3


def test_events_with_other_partition_count_than_commands_is_drift(
        admin: AdminClient, catalogue: Catalogue) -> None:
    _create(admin, catalogue.events.name, 2, **dict(catalogue.events.configs))
    report = apply(admin, catalogue)
    assert any(drift.setting == "co-partitioning" for drift in report.drift)
    assert catalogue.commands.name not in report.created
    assert _partitions(admin, catalogue.events.name) == 2


def _cli(kafka_config: dict[str, str], prefix: str, *args: str) -> tuple[int, str]:
    env = {"CQRS_KAFKA_BOOTSTRAP": kafka_config["bootstrap.servers"],
           "CQRS_TOPIC_PREFIX": prefix, "CQRS_PARTITIONS": "2", "COLUMNS": "200"}
    # Imported here so the apply tests above do not depend on the whole CLI package.
    from cqrs.cli.topics import app

    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_cli_apply_end_to_end(admin: AdminClient, kafka_config: dict[str, str],
                              topic_prefix: str) -> None:
    code, output = _cli(kafka_config, topic_prefix, "apply")
    assert code == 0, output
    assert f"created {topic_prefix}commands" in output
    code, output = _cli(kafka_config, topic_prefix, "apply")
    assert code == 0, output
    assert f"ok      {topic_prefix}events" in output
    assert _partitions(admin, f"{topic_prefix}events") == 2
    code, output = _cli(kafka_config, topic_prefix, "list", "--json")
    assert code == 0, output
    assert f'"name": "{topic_prefix}events"' in output


def test_cli_apply_exits_1_on_drift(admin: AdminClient, kafka_config: dict[str, str],
                                    topic_prefix: str) -> None:
    _create(admin, f"{topic_prefix}commands", 3)
    code, output = _cli(kafka_config, topic_prefix, "apply")
    assert code == 1, output
    assert "drift" in output
    assert _partitions(admin, f"{topic_prefix}commands") == 3


def test_cli_exits_2_when_the_broker_is_unreachable(topic_prefix: str) -> None:
    started = time.monotonic()
    code, output = _cli({"bootstrap.servers": "127.0.0.1:1"}, topic_prefix, "apply",
                        "--timeout", "1")
    assert code == 2, output
    assert "cqrs services up" in output
    assert time.monotonic() - started < 10


def test_cqrs_topics_apply_is_registered_in_the_cli(
        admin: AdminClient, kafka_config: dict[str, str], topic_prefix: str) -> None:
    env = {**os.environ, "CQRS_KAFKA_BOOTSTRAP": kafka_config["bootstrap.servers"],
           "CQRS_TOPIC_PREFIX": topic_prefix}
    done = subprocess.run([sys.executable, "-m", "cqrs", "topics", "apply"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"created {topic_prefix}events" in done.stdout
