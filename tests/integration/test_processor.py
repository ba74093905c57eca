"""The aggregate processor against the real broker: results, events, bad input, aborts, groups."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.support.processor import (
    ProcessorProcess,
    command,
    processor_config,
    produce,
    read_all,
    running_in_thread,
    topics_for,
    wait_for,
)
from topics import Catalogue, decode_event, decode_result, limits

PARTITIONS = 3


@pytest.fixture
def catalogue(kafka_config: dict[str, str], topic_prefix: str) -> Iterator[Catalogue]:
    with topics_for(kafka_config, topic_prefix, PARTITIONS) as created:
        yield created


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.5)


def user(i: int) -> dict[str, str]:
    return {"email": f"u{i}@example.com", "name": f"User {i}"}


def results_by_command(kafka_config: dict[str, str], catalogue: Catalogue) -> dict[str, list]:
    found: dict[str, list] = {}
    for record in read_all(kafka_config, catalogue.command_results.name):
        result = decode_result(record.value or b"")
        found.setdefault(result.command_id, []).append(result)
    return found


@pytest.mark.timeout(120)
def test_every_command_gets_one_result_and_accepted_ones_their_events(
    kafka_config: dict[str, str], catalogue: Catalogue
) -> None:
    creates = [command("CreateUser", f"u{i}", user(i)) for i in range(50)]
    updates = [command("UpdateUser", f"u{i}", {"name": f"New {i}"}) for i in range(25)]
    bad = [command("DeactivateUser", "nobody")]
    commands = creates + updates + bad
    produce(kafka_config, catalogue.commands.name, commands, PARTITIONS)
    with running_in_thread(processor_config(kafka_config, catalogue)):
        wait_for(kafka_config, catalogue.command_results.name, len(commands))
    results = results_by_command(kafka_config, catalogue)
    assert {c["command_id"]: len(results[c["command_id"]]) for c in commands} == {
        c["command_id"]: 1 for c in commands
    }
    events = [decode_event(r.value or b"") for r in read_all(kafka_config, catalogue.events.name)]
    per_command = Counter(event.causation_id for event in events)
    for document in commands:
        result = results[document["command_id"]][0]
        expected = len(result.event_ids) if result.status == "accepted" else 0
        assert per_command[document["command_id"]] == expected
    assert results[bad[0]["command_id"]][0].code == "user.not_found"
    assert len(events) == 75


@pytest.mark.timeout(120)
def test_bad_inputs_end_as_designed_and_the_processor_keeps_serving(
    kafka_config: dict[str, str], catalogue: Catalogue, tmp_path: Path
) -> None:
    wrong_shape = json.dumps({"command_id": "shape-1", "type": "CreateUser"}).encode()
    unknown = command("Teleport", "u1", command_id="unknown-1")
    oversized = command(
        "CreateUser", "u2", {"name": "x" * limits.MAX_COMMAND_BYTES, "email": "a@b.cd"}
    )
    violation = command("CreateUser", "u3", {"email": "not-an-email", "name": "A"}, "rule-1")
    valid = command("CreateUser", "u4", user(4), "valid-1")
    producer = Producer(kafka_config)
    for raw in (b"{not json", wrong_shape, json.dumps(unknown).encode()):
        producer.produce(catalogue.commands.name, raw, b"user-u1", partition=0)
    producer.produce(catalogue.commands.name, json.dumps(oversized).encode(), b"u2", partition=0)
    producer.flush(30)
    produce(kafka_config, catalogue.commands.name, [violation, valid], PARTITIONS)
    process = ProcessorProcess(kafka_config, catalogue, tmp_path / "p.log", "0")
    try:
        wait_for(kafka_config, catalogue.command_results.name, 4)
    finally:
        assert process.stop() == 0
    dlq = read_all(kafka_config, catalogue.commands_dlq.name)
    assert sorted(r.headers["dlq.error.class"] for r in dlq) == [
        "InvalidEnvelope",
        "NotJson",
        "TooLarge",
        "UnknownCommandType",
    ]
    for record in dlq:
        assert record.headers["dlq.source.topic"] == catalogue.commands.name
        assert record.headers["dlq.source.partition"] == "0"
        assert record.headers["dlq.source.offset"].isdigit()
        assert record.headers["dlq.error.message"]
    results = results_by_command(kafka_config, catalogue)
    assert set(results) == {"shape-1", "unknown-1", "rule-1", "valid-1"}
    assert results["shape-1"][0].code == "command.InvalidEnvelope"
    assert results["unknown-1"][0].code == "command.unknown_type"
    assert results["rule-1"][0].code.startswith("validation.")
    assert results["valid-1"][0].status == "accepted"
    stopped = [line for line in process.log() if line["event"] == "stopped"]
    assert stopped[-1]["counts"]["dead_lettered"] == 4


@pytest.mark.timeout(60)
def test_an_aborted_transaction_is_never_read_committed(
    kafka_config: dict[str, str], catalogue: Catalogue
) -> None:
    producer = Producer({**kafka_config, "transactional.id": f"{catalogue.prefix}aborting"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(catalogue.events.name, b"{}", b"user-x@1", partition=0)
    producer.flush(30)
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(catalogue.events.name, b"{}", b"user-y@1", partition=0)
    producer.commit_transaction(30)
    uncommitted = read_all(kafka_config, catalogue.events.name, committed=False)
    committed = read_all(kafka_config, catalogue.events.name, committed=True)
    assert [r.key for r in uncommitted] == [b"user-x@1", b"user-y@1"]
    assert [r.key for r in committed] == [b"user-y@1"]


@pytest.mark.timeout(180)
def test_two_processors_share_partitions_through_a_rebalance(
    kafka_config: dict[str, str], catalogue: Catalogue, tmp_path: Path
) -> None:
    first_half = [command("CreateUser", f"u{i}", user(i)) for i in range(600)]
    second_half = [command("UpdateUser", f"u{i}", {"name": f"Renamed {i}"}) for i in range(600)]
    produce(kafka_config, catalogue.commands.name, first_half, PARTITIONS)
    one = ProcessorProcess(kafka_config, catalogue, tmp_path / "one.log", "0")
    two = None
    try:
        wait_for(kafka_config, catalogue.command_results.name, 100)
        two = ProcessorProcess(kafka_config, catalogue, tmp_path / "two.log", "1")
        for chunk in range(0, 600, 100):  # traffic while the group rebalances
            produce(kafka_config, catalogue.commands.name, second_half[chunk : chunk + 100], 3)
            time.sleep(0.5)
        wait_until(
            lambda: any(line["event"] == "assigned" and line["partitions"] for line in two.log())
        )
        wait_for(kafka_config, catalogue.command_results.name, 1200, timeout=120)
    finally:
        assert one.stop() == 0
        if two is not None:
            assert two.stop() == 0
    assert any(line["event"] == "revoked" for line in one.log())
    results = results_by_command(kafka_config, catalogue)
    for document in first_half + second_half:
        statuses = [r.status for r in results[document["command_id"]]]
        assert statuses == ["accepted"], (document, statuses)
    events = [decode_event(r.value or b"") for r in read_all(kafka_config, catalogue.events.name)]
    keys = Counter((event.stream_id, event.version) for event in events)
    assert max(keys.values()) == 1
    assert len(keys) == 1200
