"""Crash safety: SIGKILL the processor subprocess mid-traffic, restart it, check exactly-once."""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.domain import aggregates
from tests.support.processor import (
    ProcessorProcess,
    command,
    produce,
    read_all,
    topics_for,
    wait_for,
)
from topics import Catalogue, decode_event, decode_result, decode_snapshot, from_envelope

PARTITIONS = 3
USERS = 200
ORDERS = 100
TOTAL = 10_000


@pytest.fixture
def catalogue(kafka_config: dict[str, str], topic_prefix: str) -> Iterator[Catalogue]:
    with topics_for(kafka_config, topic_prefix, PARTITIONS) as created:
        yield created


def workload(rng: random.Random) -> list[dict[str, Any] | bytes]:
    """Creates first, then a random mix of updates, (de|re)activations, orders, dups, garbage."""
    made: list[dict[str, Any] | bytes] = [
        command("CreateUser", f"u{i}", {"email": f"u{i}@example.com", "name": f"U{i}"})
        for i in range(USERS)
    ]
    items = [{"sku": "sku-1", "quantity": 1, "unit_price": 500}]
    while len(made) < TOTAL:
        roll = rng.random()
        user, order = f"u{rng.randrange(USERS)}", f"o{rng.randrange(ORDERS)}"
        if roll < 0.55:
            made.append(command("UpdateUser", user, {"name": f"N{rng.randrange(10**6)}"}))
        elif roll < 0.62:
            made.append(command(rng.choice(["DeactivateUser", "ReactivateUser"]), user))
        elif roll < 0.72:
            data = {"customer_id": user, "items": items, "currency": "EUR"}
            made.append(command("CreateOrder", order, data))
        elif roll < 0.85:
            made.append(command("PayOrder", order, {"payment_ref": f"p{rng.randrange(10**6)}"}))
        elif roll < 0.90:
            made.append(command("ShipOrder", order))
        elif roll < 0.97:
            earlier = rng.choice(made)
            made.append(earlier)  # the same command (same id) again: a duplicate
        else:
            made.append(b"\x00garbage " + str(rng.random()).encode())
    return made


def check_events_and_snapshots(kafka_config: dict[str, str], catalogue: Catalogue) -> dict:
    events = [decode_event(r.value or b"") for r in read_all(kafka_config, catalogue.events.name)]
    by_stream: dict[str, list] = defaultdict(list)
    for event in events:
        by_stream[event.stream_id].append(event)
    for stream_id, stream_events in by_stream.items():
        versions = [event.version for event in stream_events]
        assert versions == list(range(1, len(versions) + 1)), (stream_id, versions)
    latest: dict[str, Any] = {}
    for record in read_all(kafka_config, catalogue.aggregates.name):
        latest[(record.key or b"").decode()] = decode_snapshot(record.value or b"")
    for stream_id, stream_events in by_stream.items():
        snapshot = latest[stream_id]
        state = aggregates.fold(None, [from_envelope(e) for e in stream_events])
        assert snapshot.version == len(stream_events)
        assert snapshot.state == aggregates.state_to_data(state), stream_id
    return by_stream


def committed_batches(process: ProcessorProcess) -> int:
    return sum(line["event"] == "batch committed" for line in process.log())


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("resident", [None, 20], ids=["every-state-in-memory", "20-resident"])
def test_sigkill_and_restart_loses_nothing_and_duplicates_nothing(
    kafka_config: dict[str, str], catalogue: Catalogue, tmp_path: Path, resident: int | None
) -> None:
    """`resident`: the processor's bound on states in memory (300 streams here: with 20, most
    decisions read a state back from its spill file), or none."""
    rng = random.Random(20240501)
    records = workload(rng)
    waves = [records[i : i + 2500] for i in range(0, TOTAL, 2500)]
    log = tmp_path / "processor.log"
    env = {} if resident is None else {"CQRS_PROCESSOR_MAX_RESIDENT_STREAMS": str(resident)}

    def start() -> ProcessorProcess:
        return ProcessorProcess(kafka_config, catalogue, log, "0", env=env)

    process = start()
    kills = 0
    for wave in waves[:-1]:
        before = committed_batches(process)
        produce(kafka_config, catalogue.commands.name, wave, PARTITIONS)
        deadline = time.monotonic() + 60
        while committed_batches(process) == before and time.monotonic() < deadline:
            time.sleep(0.05)  # killed mid-traffic: after it has committed part of this wave
        time.sleep(rng.uniform(0.0, 0.8))
        process.kill()
        kills += 1
        process = start()
    produce(kafka_config, catalogue.commands.name, waves[-1], PARTITIONS)
    garbage = sum(isinstance(r, bytes) for r in records)
    answered = len(records) - garbage
    try:
        wait_for(kafka_config, catalogue.command_results.name, answered, timeout=180)
    finally:
        assert process.stop() == 0
    assert kills >= 3

    sent = Counter(r["command_id"] for r in records if isinstance(r, dict))
    results: dict[str, list] = defaultdict(list)
    for record in read_all(kafka_config, catalogue.command_results.name):
        result = decode_result(record.value or b"")
        results[result.command_id].append(result)
    assert {cid: len(results[cid]) for cid in sent} == dict(sent)  # one result per record
    assert len(read_all(kafka_config, catalogue.commands_dlq.name)) == garbage

    by_stream = check_events_and_snapshots(kafka_config, catalogue)
    caused = Counter(event.causation_id for events in by_stream.values() for event in events)
    for command_id, answers in results.items():
        accepted = [answer for answer in answers if answer.status == "accepted"]
        assert len(accepted) <= 1, answers
        expected = len(accepted[0].event_ids) if accepted else 0
        assert caused[command_id] == expected, (command_id, answers)
    lines = [line for line in process.log() if line["event"] == "restored"]
    assert len(lines) >= 4
