"""`cqrs lag` and `cqrs dlq` against real Kafka and PostgreSQL (`cqrs project postgres` as a
process): lag before and after catch-up, a poison event's DLQ depth and parked count, and a
retry that releases the waiting stream once its cause is fixed; the commands DLQ's retry."""

from __future__ import annotations

import json
from pathlib import Path

from confluent_kafka import Producer

from tests.integration.projector_harness import PARTITIONS, Setup, running_projector, wait_until
from tests.integration.test_replay import cli, env, lag, model
from tests.support.events import envelope, produce
from tests.support.processor import processor_config, read_all, running_in_thread, wait_for
from topics import (
    Catalogue,
    UserCreated,
    UserDeactivated,
    UserEmailChanged,
    UserNameChanged,
    partition_for,
)

__all__ = ["env"]  # the fixture, shared with test_replay


def test_lag_is_the_distance_to_the_end_and_zero_once_caught_up(env: Setup, tmp_path: Path,
                                                                ) -> None:
    plain, committed = model(10), model(5, "t")
    events = plain + committed
    produce(env.kafka_config, env.events, plain, PARTITIONS)
    # a transaction's commit marker takes an offset of each partition it wrote to, as the
    # processor's transactions do: not a record, so not lag once the projector is past it
    produce(env.kafka_config, env.events, committed, PARTITIONS, transactional=True)
    before = lag(env)
    assert before["postgres"]["state"] == "stopped"
    assert before["postgres"]["lag"] == len(events) + PARTITIONS
    assert sum(row["end"] for row in before["postgres"]["partitions"]) == len(events) + PARTITIONS
    assert before["processor"]["lag"] == 0
    with running_projector(env.env, tmp_path / "p.log") as projector:
        wait_until(lambda: projector.totals()["consumed"] == len(events), 90, "every event")
        wait_until(lambda: lag(env)["postgres"]["state"] == "running", 30, "a group member")
        after = lag(env)["postgres"]
    assert after["lag"] == 0
    # the checkpoint is the last record; the marker after it is the one offset left, and no lag
    assert [row["position"] + 1 for row in after["partitions"]] == [
        row["end"] for row in after["partitions"]]
    assert (after["dlq_depth"], after["parked"], after["blocked"]) == (0, 0, 0)
    table = cli(env, "lag", "--projector", "postgres")
    assert table.returncode == 0, table.stderr
    assert "processor" in table.stdout
    assert "postgres" in table.stdout


def test_poison_shows_in_lag_and_retry_releases_the_stream(env: Setup, tmp_path: Path) -> None:
    # version 2 before version 1: the patch finds no row (impossible history) → DLQ; v3 parked
    produce(env.kafka_config, env.events,
            [envelope("user-gap", 2, UserNameChanged(name="Gap Two")),
             envelope("user-gap", 3, UserEmailChanged(email="gap3@x.io")),
             *model(2)], PARTITIONS)
    with running_projector(env.env, tmp_path / "p.log") as projector:
        wait_until(lambda: projector.totals()["consumed"] == 2 + 9, 90, "11 events")
        # the cause is fixed: the missing first event is published (parked too: stream blocked)
        produce(env.kafka_config, env.events,
                [envelope("user-gap", 1, UserCreated(email="gap@x.io", name="Gap"))],
                PARTITIONS)
        wait_until(lambda: projector.totals()["consumed"] == 12, 90, "the missing event")
    found = lag(env)["postgres"]
    assert (found["dlq_depth"], found["parked"], found["blocked"]) == (1, 2, 1)
    assert found["lag"] == 0

    listing = cli(env, "dlq", "list", "postgres", "--json")
    assert listing.returncode == 0, listing.stderr
    [entry] = json.loads(listing.stdout)[f"{env.prefix}projection.postgres.dlq"]
    assert entry["stream_id"] == "user-gap"
    assert entry["status"] == "blocking (2 parked)"
    assert entry["error"].startswith("InvalidHistory")
    position = f"{entry['partition']}:{entry['offset']}"
    shown = json.loads(cli(env, "dlq", "show", "postgres", position).stdout)
    assert shown["value"]["type"] == "UserNameChanged"
    assert shown["headers"]["dlq.source.topic"] == env.events

    retried = cli(env, "dlq", "retry", "postgres", position)
    assert retried.returncode == 0, retried.stderr
    assert "released user-gap: 3 event(s)" in retried.stderr
    assert env.query("SELECT name, email, version FROM users WHERE id = 'gap'") == [
        ("Gap Two", "gap3@x.io", 3)]
    assert lag(env)["postgres"]["parked"] == 0
    again = cli(env, "dlq", "retry", "postgres", position)
    assert again.returncode == 0
    assert "nothing to do" in again.stderr
    listing = cli(env, "dlq", "list", "postgres", "--json")
    assert json.loads(listing.stdout)[f"{env.prefix}projection.postgres.dlq"][0][
        "status"] == "released"

    # the stream resumes: its next event is applied, not parked
    with running_projector(env.env, tmp_path / "p2.log") as projector:
        produce(env.kafka_config, env.events,
                [envelope("user-gap", 4, UserDeactivated())], PARTITIONS)
        wait_until(lambda: projector.totals()["applied"] == 1, 90, "version 4 applied")
    assert env.query("SELECT active, version FROM users WHERE id = 'gap'") == [(False, 4)]


def test_retry_refuses_while_the_projector_runs_and_reports_still_poison(
        env: Setup, tmp_path: Path) -> None:
    produce(env.kafka_config, env.events,
            [envelope("user-gap", 2, UserNameChanged(name="Gap Two"))], PARTITIONS)
    with running_projector(env.env, tmp_path / "p.log") as projector:
        wait_until(lambda: projector.totals()["dead_lettered"] == 1, 90, "the poison")
        wait_until(lambda: lag(env)["postgres"]["state"] == "running", 30, "a group member")
        refused = cli(env, "dlq", "retry", "postgres", "--all")
        assert refused.returncode == 1
        assert "is running" in refused.stderr
    still = cli(env, "dlq", "retry", "postgres", "--all")
    assert still.returncode == 1
    assert "still poison" in still.stderr
    assert lag(env)["postgres"]["blocked"] == 1


def test_commands_dlq_retry_republishes_the_command_and_the_processor_decides_it(
        env: Setup) -> None:
    command = {"command_id": "c-1", "type": "CreateUser", "aggregate_id": "u9",
               "data": {"email": "u9@x.io", "name": "U Nine"},
               "issued_at": "2026-01-01T00:00:00Z"}
    source = partition_for("user-u9", PARTITIONS)
    producer = Producer(env.kafka_config)
    producer.produce(f"{env.prefix}commands.dlq", key=b"user-u9",
                     value=json.dumps(command).encode(), partition=1,
                     headers=[("trace", b"t-1"), ("source_topic", f"{env.prefix}commands".encode()),
                              ("source_partition", str(source).encode()),
                              ("source_offset", b"7"), ("error_class", b"UnknownCommandType"),
                              ("error_message", b"no handler")])
    assert producer.flush(30) == 0
    assert lag(env)["processor"]["dlq_depth"] == 1
    shown = cli(env, "dlq", "show", "commands", "1:0")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["value"] == command
    retried = cli(env, "dlq", "retry", "commands", "1:0")
    assert retried.returncode == 0, retried.stderr

    [record] = read_all(env.kafka_config, f"{env.prefix}commands")
    assert (record.partition, record.key) == (source, b"user-u9")
    assert json.loads(record.value or b"") == command
    assert record.headers["trace"] == "t-1"
    assert record.headers["dlq.retry.of"] == f"{env.prefix}commands.dlq:1:0"
    assert "source_topic" not in record.headers

    # decided again by the processor; a second retry is answered `duplicate` (same command id)
    catalogue = Catalogue(prefix=env.prefix, partitions=PARTITIONS)
    with running_in_thread(processor_config(env.kafka_config, catalogue)):
        wait_for(env.kafka_config, catalogue.command_results.name, 1)
        assert cli(env, "dlq", "retry", "commands", "--all").returncode == 0
        results = wait_for(env.kafka_config, catalogue.command_results.name, 2)
    assert [json.loads(r.value or b"")["status"] for r in results] == ["accepted", "duplicate"]
    assert lag(env)["processor"]["lag"] == 0
