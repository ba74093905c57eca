"""The processor's metrics and health on the in-memory broker, and its HTTP endpoints as WSGI."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from cqrs.config import Config
from cqrs.settings import Settings
from observability import Verdict, health_app
from pipeline.processor import Processor, ProcessorConfig, TopicNames
from pipeline.processor.health import LIVENESS_S, ProcessorHealth
from pipeline.processor.memory import Fault, MemoryBroker, drain
from pipeline.processor.metrics import ProcessorMetrics
from pipeline.processor.records import InboundRecord

TOPICS = TopicNames("c", "e", "a", "r", "dlq")
NOW = datetime(2024, 5, 1, tzinfo=UTC)
CONFIG = ProcessorConfig(kafka={}, topics=TOPICS, prefix="t.", instance_id="t", batch_ms=1)


def create(i: int, command_id: str | None = None) -> bytes:
    document = {
        "command_id": command_id or f"c{i}",
        "type": "CreateUser",
        "aggregate_id": f"u{i}",
        "data": {"email": f"u{i}@example.com", "name": f"User {i}"},
        "issued_at": "2024-05-01T00:00:00Z",
    }
    return json.dumps(document).encode()


def value(processor: Processor, name: str, **labels: str) -> float | None:
    return processor.metrics.registry.get_sample_value(name, {"prefix": "t.", **labels})


def started(
    values: list[bytes], *faults: Fault, config: ProcessorConfig = CONFIG, partitions: int = 1
) -> tuple[Processor, MemoryBroker]:
    broker = MemoryBroker.for_config(config, partitions)
    for raw in values:
        broker.append("c", 0, b"k", raw)
    broker.inject(*faults)
    processor = broker.processor(config, lambda: NOW)
    processor.start()
    return processor, broker


def test_a_drained_run_counts_each_outcome_events_and_batches() -> None:
    values = [create(i) for i in range(5)] + [create(0), b"not json"]
    processor, broker = started(values)
    drain(processor, broker)
    counters = processor.counters
    assert (counters.accepted, counters.duplicate, counters.dead_lettered) == (5, 1, 1)
    records = "cqrs_processor_records_total"
    assert value(processor, records, outcome="accepted") == 5
    assert value(processor, records, outcome="duplicate") == 1
    assert value(processor, records, outcome="dead_lettered") == 1
    assert value(processor, records, outcome="rejected") == 0
    assert value(processor, records, outcome="skipped") == 0
    assert value(processor, "cqrs_processor_events_total") == 5
    assert value(processor, "cqrs_processor_batch_size_count") == counters.batches
    assert value(processor, "cqrs_processor_batch_size_sum") == 7
    assert value(processor, "cqrs_processor_transaction_duration_seconds_count") == counters.batches
    assert value(processor, "cqrs_processor_aborted_transactions_total") == 0
    assert value(processor, "cqrs_processor_producer_restarts_total") == 0
    assert value(processor, "cqrs_processor_rebalances_total") == 1
    assert value(processor, "cqrs_processor_up") == 1


def test_an_injected_fatal_fault_counts_a_producer_restart_and_a_restore() -> None:
    processor, broker = started([create(i) for i in range(3)], Fault("fatal", "commit"))
    drain(processor, broker)
    assert value(processor, "cqrs_processor_producer_restarts_total") == 1
    assert value(processor, "cqrs_processor_aborted_transactions_total") == 0
    # The assignment's restore and the one after the restart.
    assert value(processor, "cqrs_processor_restore_duration_seconds_count") == 2
    assert value(processor, "cqrs_processor_records_total", outcome="accepted") == 3
    assert processor.health.readiness().ok


def test_an_abortable_fault_counts_an_aborted_transaction_only() -> None:
    processor, broker = started([create(i) for i in range(3)], Fault("abortable", "commit"))
    drain(processor, broker)
    assert value(processor, "cqrs_processor_aborted_transactions_total") == 1
    assert value(processor, "cqrs_processor_producer_restarts_total") == 0
    assert value(processor, "cqrs_processor_records_total", outcome="accepted") == 3


def test_restored_streams_and_rebalances_follow_the_assignment() -> None:
    processor, broker = started([create(i) for i in range(4)])
    drain(processor, broker)
    assert value(processor, "cqrs_processor_restored_streams") == 0  # nothing to restore yet
    processor._consumer.reassign([0])  # type: ignore[attr-defined]
    processor.step()
    # Cooperative: the partition kept is neither revoked nor restored.
    assert value(processor, "cqrs_processor_rebalances_total") == 2
    assert value(processor, "cqrs_processor_restore_duration_seconds_count") == 1
    processor._consumer.reassign([])  # type: ignore[attr-defined]
    processor.step()
    processor._consumer.reassign([0])  # type: ignore[attr-defined]
    processor.step()
    assert value(processor, "cqrs_processor_rebalances_total") == 4
    assert value(processor, "cqrs_processor_restore_duration_seconds_count") == 2
    assert value(processor, "cqrs_processor_restored_streams") == 4


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_consumer_lag_is_sampled_at_most_once_a_second_per_owned_partition() -> None:
    ticks = Ticks()
    config = dataclasses.replace(CONFIG, batch_size=2)
    broker = MemoryBroker.for_config(config, 2)
    for i in range(10):
        broker.append("c", 0, b"k", create(i))
    metrics = ProcessorMetrics(CollectorRegistry(), "t.", monotonic=ticks)
    processor = broker.processor(config, lambda: NOW, metrics)
    processor.start()
    processor.step()  # sampled before the first assignment: nothing owned yet
    assert value(processor, "cqrs_processor_consumer_lag", partition="0") is None
    processor.step()  # within the second: not sampled
    assert value(processor, "cqrs_processor_consumer_lag", partition="0") is None
    ticks.now += 1.0
    # Partition 1 holds the commands forwarded to their stream's partition, not consumed yet.
    forwarded = len(broker.records("c", 1))
    processor.step()  # sampled first: two batches of two consumed so far
    assert value(processor, "cqrs_processor_consumer_lag", partition="0") == 6
    assert value(processor, "cqrs_processor_consumer_lag", partition="1") == forwarded
    processor._consumer.reassign([1])  # type: ignore[attr-defined]
    ticks.now += 1.0
    processor.step()
    assert value(processor, "cqrs_processor_consumer_lag", partition="0") is None


def test_a_lag_that_cannot_be_read_is_a_warning_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor, broker = started([create(i) for i in range(3)])

    def position_fails() -> dict[int, int]:
        raise RuntimeError("KafkaError{code=_STATE}: position() failed")
    processor._consumer.lag = position_fails  # type: ignore[attr-defined,method-assign]
    with caplog.at_level("WARNING", logger="pipeline.processor"):
        drain(processor, broker)
    assert value(processor, "cqrs_processor_records_total", outcome="accepted") == 3
    [warning] = [r for r in caplog.records if r.getMessage() == "consumer lag not sampled"]
    assert "position() failed" in warning.error  # type: ignore[attr-defined]


def test_two_processors_in_one_process_keep_their_own_registries() -> None:
    first, first_broker = started([create(1)])
    second, second_broker = started([create(1), create(2)])
    drain(first, first_broker)
    drain(second, second_broker)
    assert value(first, "cqrs_processor_records_total", outcome="accepted") == 1
    assert value(second, "cqrs_processor_records_total", outcome="accepted") == 2


class SpyReader:
    """A `PartitionReader` that notes the processor's readiness while a restore reads."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.processor: Processor | None = None
        self.seen: list[Verdict] = []

    def read(self, topic: str, partitions: list[int], timeout_s: float) -> Iterator[InboundRecord]:
        assert self.processor is not None
        self.seen.append(self.processor.health.readiness())
        yield from self.inner.read(topic, partitions, timeout_s)


def spied(values: list[bytes], *faults: Fault) -> tuple[Processor, MemoryBroker, SpyReader]:
    broker = MemoryBroker.for_config(CONFIG, 1)
    for raw in values:
        broker.append("c", 0, b"k", raw)
    broker.inject(*faults)
    ports = broker.ports(CONFIG)
    spy = SpyReader(ports.reader)
    processor = Processor(CONFIG, dataclasses.replace(ports, reader=spy), lambda: NOW)
    spy.processor = processor
    return processor, broker, spy


def test_not_ready_before_the_assignment_nor_while_restoring_then_ready() -> None:
    processor, broker, spy = spied([create(1)])
    assert processor.health.readiness() == Verdict(False, "waiting for a partition assignment")
    processor.start()
    drain(processor, broker)
    assert spy.seen == [Verdict(False, "restoring stream states")]
    assert processor.health.readiness() == Verdict(True, "partitions [0]")
    processor._consumer.reassign([0])  # type: ignore[attr-defined]
    processor.step()
    assert spy.seen[-1] == Verdict(False, "restoring stream states")
    assert processor.health.readiness().ok
    processor.close()
    assert processor.health.readiness() == Verdict(False, "stopped")


def test_not_ready_while_the_producer_is_recovered() -> None:
    processor, broker, spy = spied([create(1)], Fault("fatal", "commit"))
    processor.start()
    drain(processor, broker)
    # The second restore runs inside the recovery, which the reason names.
    assert spy.seen == [Verdict(False, "restoring stream states"),
                        Verdict(False, "recovering the producer")]
    assert processor.health.readiness().ok


def test_not_ready_between_a_revocation_of_everything_and_the_next_assignment() -> None:
    health = ProcessorHealth()
    health.assigned([0, 1])
    health.revoked([1])  # a cooperative rebalance: partition 1 goes, 0 keeps going
    assert health.readiness() == Verdict(True, "partitions [1]")
    health.revoked([])
    assert health.readiness() == Verdict(False, "rebalancing")
    health.assigned([])
    assert health.readiness() == Verdict(True, "partitions []")
    with health.recovering():
        assert health.readiness() == Verdict(False, "recovering the producer")


def test_alive_while_the_loop_iterated_within_the_last_minute() -> None:
    ticks = Ticks()
    health = ProcessorHealth(monotonic=ticks)
    assert health.liveness().ok
    ticks.now += LIVENESS_S - 1
    assert health.liveness().ok
    ticks.now += 1
    assert not health.liveness().ok
    health.iterated()
    assert health.liveness().ok


def call(app: Any, path: str) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    answer: dict[str, Any] = {}

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    body = b"".join(app(environ, start))
    return answer["status"], answer["headers"], body


def test_the_http_app_serves_metrics_livez_and_readyz() -> None:
    processor, broker = started([create(1), create(2)])
    app = health_app(processor.metrics.registry, processor.health)
    status, _, body = call(app, "/readyz")
    assert status.startswith("503")
    assert json.loads(body) == {
        "status": "not ready", "reason": "waiting for a partition assignment"}
    drain(processor, broker)
    status, headers, body = call(app, "/readyz")
    assert (status[:3], headers["Content-Type"]) == ("200", "application/json")
    assert json.loads(body)["status"] == "ready"
    status, _, body = call(app, "/livez")
    assert (status[:3], json.loads(body)["status"]) == ("200", "alive")
    status, _, body = call(app, "/metrics")
    assert status.startswith("200")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    accepted = [s for s in families["cqrs_processor_records"].samples
                if s.name == "cqrs_processor_records_total" and s.labels["outcome"] == "accepted"]
    assert [(s.labels["prefix"], s.value) for s in accepted] == [("t.", 2)]
    assert call(app, "/other")[0].startswith("404")


def test_the_metrics_port_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Config.from_settings(Settings()).processor_metrics_port == 9401
    monkeypatch.setenv("CQRS_PROCESSOR_METRICS_PORT", "0")
    assert Config.from_settings(Settings()).processor_metrics_port == 0
    monkeypatch.setenv("CQRS_PROCESSOR_METRICS_PORT", "70000")
    with pytest.raises(ValueError, match="65535"):
        Settings()


def test_alive_through_a_restore_longer_than_the_liveness_limit() -> None:
    ticks = Ticks()
    health = ProcessorHealth(monotonic=ticks)
    with health.restoring():
        ticks.now += 300  # a restore of millions of streams, within its own timeout
        assert health.liveness() == Verdict(True, "restoring stream states")
    assert not health.liveness().ok  # and no loop iteration since


def test_the_poll_interval_covers_an_assignment() -> None:
    assert ProcessorConfig(kafka={}, topics=CONFIG.topics).command_consumer()[
        "max.poll.interval.ms"] == 300_000
    long = ProcessorConfig(kafka={}, topics=CONFIG.topics, restore_timeout_s=600)
    assert long.command_consumer()["max.poll.interval.ms"] == int(
        (long.stable_offsets_timeout_s + 3 * 600 + 30) * 1000)
    assert long.command_consumer()["partition.assignment.strategy"] == "cooperative-sticky"


def test_the_streams_gauges_say_where_the_states_are() -> None:
    bounded = dataclasses.replace(CONFIG, max_resident_streams=2)
    processor, broker = started([create(i) for i in range(5)], config=bounded)
    drain(processor, broker)
    processor.metrics._streams_sampled = None  # sampled at most every few seconds
    processor.step()
    assert value(processor, "cqrs_processor_streams", where="memory") == 2
    assert value(processor, "cqrs_processor_streams", where="disk") == 3
    processor.close()
