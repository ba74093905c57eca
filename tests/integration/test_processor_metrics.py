"""`cqrs processor --metrics-port N` against the broker: /metrics, /livez, /readyz."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.metrics import free_port, get, sample, scrape
from tests.support.processor import (
    ProcessorProcess,
    command,
    produce,
    read_all,
    topics_for,
    wait_for,
)
from topics import Catalogue, decode_result

PARTITIONS = 3


@pytest.fixture
def catalogue(kafka_config: dict[str, str], topic_prefix: str) -> Iterator[Catalogue]:
    with topics_for(kafka_config, topic_prefix, PARTITIONS) as found:
        yield found


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.2)


def user(i: int, command_id: str) -> dict[str, object]:
    return command("CreateUser", f"m{i}", {"email": f"m{i}@example.com", "name": f"M {i}"},
                   command_id)


@pytest.mark.timeout(180)
def test_metrics_count_what_the_results_say_and_readyz_turns_ready(
    kafka_config: dict[str, str], catalogue: Catalogue, tmp_path: Path
) -> None:
    commands = [user(i, f"metrics-{i}") for i in range(10)]
    commands += [user(0, "metrics-0"), user(1, "metrics-1")]  # duplicates
    commands.append(command("CreateUser", "bad", {"email": "no", "name": "B"}, "metrics-bad"))
    produce(kafka_config, catalogue.commands.name, commands, PARTITIONS)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = ProcessorProcess(kafka_config, catalogue, tmp_path / "p.log", "m0", port)
    prefix = {"prefix": catalogue.prefix}
    try:
        def answered(path: str) -> tuple[int, dict[str, str]] | None:
            try:
                status, body = get(f"{base}{path}")
            except OSError:
                return None  # not listening yet
            return status, json.loads(body)

        wait_until(lambda: (answered("/readyz") or (0, {}))[0] == 200, 90, "/readyz 200")
        assert answered("/readyz") == (200, {"status": "ready", "reason": "partitions [0, 1, 2]"})
        assert (answered("/livez") or (0, {}))[0] == 200
        results = [decode_result(r.value or b"") for r in
                   wait_for(kafka_config, catalogue.command_results.name, len(commands))]
        statuses = [result.status for result in results]
        assert (statuses.count("accepted"), statuses.count("duplicate")) == (10, 2)

        def counted() -> bool:
            samples = scrape(base)
            return sample(samples, "cqrs_processor_records_total", **prefix,
                          outcome="duplicate") == 2

        wait_until(counted, 30, "the last batch counted")
        samples = scrape(base)
        assert sample(samples, "cqrs_processor_records_total", **prefix,
                      outcome="accepted") == statuses.count("accepted")
        assert sample(samples, "cqrs_processor_records_total", **prefix,
                      outcome="rejected") == statuses.count("rejected") == 1
        events = read_all(kafka_config, catalogue.events.name)
        assert sample(samples, "cqrs_processor_events_total", **prefix) == len(events) == 10
        batches = sample(samples, "cqrs_processor_batch_size_count", **prefix)
        assert batches is not None
        assert batches >= 1
        assert sample(samples, "cqrs_processor_batch_size_sum", **prefix) == len(commands)
        assert sample(samples, "cqrs_processor_producer_restarts_total", **prefix) == 0
        assert sample(samples, "cqrs_processor_rebalances_total", **prefix) == 1
        assert sample(samples, "cqrs_processor_up", **prefix) == 1

        def lag_zero() -> bool:
            samples = scrape(base)
            lags = [sample(samples, "cqrs_processor_consumer_lag", **prefix, partition=str(p))
                    for p in range(PARTITIONS)]
            return lags == [0.0] * PARTITIONS

        wait_until(lag_zero, 30, "consumer lag 0 on every partition")
    finally:
        assert process.stop() == 0


@pytest.mark.timeout(120)
def test_a_metrics_port_in_use_is_logged_and_the_processor_still_serves(
    kafka_config: dict[str, str], catalogue: Catalogue, tmp_path: Path
) -> None:
    """Several workers on one host must not stop each other from starting: the processor logs
    the port it cannot bind, naming the option, and goes on answering commands."""
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # where the processor binds
        taken.listen()
        port = taken.getsockname()[1]
        process = ProcessorProcess(kafka_config, catalogue, tmp_path / "p.log", "m1", port)
        try:
            produce(kafka_config, catalogue.commands.name,
                    [command("CreateUser", "taken", {"email": "t@example.com", "name": "T"})],
                    PARTITIONS)
            found = wait_for(kafka_config, catalogue.command_results.name, 1)
            assert [decode_result(r.value or b"").status for r in found] == ["accepted"]
            assert process.popen.poll() is None
        finally:
            assert process.stop() == 0
    text = process.log_path.read_text()
    assert f"port {port} cannot be bound" in text
    assert "--metrics-port" in text
