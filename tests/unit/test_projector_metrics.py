"""The projector's metrics and health: `BatchProcessor` against the fake store, the lag rule
(transaction markers), the periodic gauges, and the HTTP endpoints."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from observability import serve
from projections.postgres.fake import FakeStore
from projections.runtime import Batch, BatchProcessor, PoisonEvent, SourceRecord, TransientError
from projections.runtime.faust_app import delivered_offset
from projections.runtime.health import ProjectorHealth
from projections.runtime.metrics import PartitionOffsets, ProjectorMetrics, records_behind
from projections.runtime.observe import Refresher
from tests.support.events import T0, as_records, stream
from tests.unit.test_projection_processor import ListDeadLetters, user_history
from topics import UserCreated, UserNameChanged

LABELS = {"prefix": "t.", "projector": "postgres"}
NOW = T0.timestamp() + 30.0


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, {**LABELS, **labels})
    assert found is not None, (name, labels)
    return found


def make(store: FakeStore, health: ProjectorHealth | None = None,
         sleeps: list[float] | None = None) -> tuple[BatchProcessor, CollectorRegistry]:
    registry = CollectorRegistry()

    async def sleep(delay: float) -> None:
        if sleeps is not None:
            sleeps.append(delay)

    processor = BatchProcessor("postgres", store, ListDeadLetters(), sleep=sleep,
                               metrics=ProjectorMetrics(registry, "t.", "postgres"),
                               health=health, clock=lambda: NOW)
    return processor, registry


def test_outcome_counters_equal_the_processor_counters() -> None:
    store = FakeStore()
    processor, registry = make(store)
    good = as_records(user_history("g"))
    first, *later = as_records(user_history("p"))
    poison = SourceRecord(first.topic, first.partition, first.offset, first.key, b"{not json",
                          first.headers)

    async def scenario() -> None:
        await processor.start()
        await processor.process([poison, *later[:1]])
        await processor.process([*later[1:], *good])
        await processor.process(good)  # all already applied: skipped
    asyncio.run(scenario())

    counts = processor.counters.snapshot()
    assert counts == {"consumed": 12, "applied": 4, "skipped": 4, "parked": 3,
                      "dead_lettered": 1}
    for outcome in ("applied", "skipped", "parked", "dead_lettered"):
        assert value(registry, "cqrs_projector_records_total", outcome=outcome) == counts[outcome]
    assert value(registry, "cqrs_projector_batch_size_count") == 3
    assert value(registry, "cqrs_projector_batch_size_sum") == 12
    assert value(registry, "cqrs_projector_parked_streams") == 1
    assert value(registry, "cqrs_projector_store_commit_duration_seconds_count") == 3
    assert value(registry, "cqrs_projector_up") == 1


def test_event_age_is_observed_once_per_partition_of_a_committed_batch() -> None:
    processor, registry = make(FakeStore())
    both = as_records([*stream("user-a", [UserCreated(email="a@x.io", name="a"),
                                          UserNameChanged(name="b")]),
                       *stream("user-c", [UserCreated(email="c@x.io", name="c")])])
    records, other = both[:2], both[2:]
    assert other[0].partition != records[0].partition
    asyncio.run(processor.process(both))

    assert value(registry, "cqrs_projector_event_age_seconds_count") == 2  # two partitions
    assert value(registry, "cqrs_projector_event_age_seconds_sum") == 60.0
    assert value(registry, "cqrs_projector_event_age_seconds_bucket", le="30.0") == 2
    assert value(registry, "cqrs_projector_event_age_seconds_bucket", le="10.0") == 0
    partition = records[0].partition
    assert processor.checkpoint(records[0].topic, partition) == records[-1].offset
    assert processor.last_applied_at(records[0].topic, partition) == T0.timestamp()
    assert processor.last_applied_at(records[0].topic, other[0].partition) == T0.timestamp()


def test_the_delivered_offset_is_fausts_read_offset_below_the_position() -> None:
    assert delivered_offset(None, 5) is None
    assert delivered_offset(5, 5) is None  # just sought to 5: nothing delivered yet
    assert delivered_offset(4, 5) == 4
    assert delivered_offset(4, None) is None


class Unreachable(FakeStore):
    """A store whose `apply` fails transiently `failures` times, then works."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def apply(self, batch: Batch):  # type: ignore[no-untyped-def]
        if self.failures:
            self.failures -= 1
            raise TransientError("connection refused")
        return await super().apply(batch)


def test_not_ready_while_a_transient_store_fault_is_retried() -> None:
    health = ProjectorHealth()
    seen: list[tuple[bool, str]] = []
    processor, registry = make(Unreachable(3), health)

    async def sleep(delay: float) -> None:
        status = health.readiness()
        seen.append((status.ok, status.reason))
    processor._sleep = sleep

    async def scenario() -> None:
        await processor.start()
        health.assigned = True
        assert health.readiness().ok
        await processor.process(as_records(user_history("r")))
    asyncio.run(scenario())

    assert seen == [(False, "retrying store.apply after TransientError")] * 3
    assert health.readiness().ok
    assert value(registry, "cqrs_projector_transient_faults_total") == 3
    assert value(registry, "cqrs_projector_records_total", outcome="applied") == 4


class FlakyThenPoison(FakeStore):
    """A store whose `apply` fails transiently once, then names its first item poison once."""

    def __init__(self) -> None:
        super().__init__()
        self.faults: list[Exception] = [TransientError("connection reset"),
                                        PoisonEvent(0, ValueError("no such user"))]

    async def apply(self, batch: Batch):  # type: ignore[no-untyped-def]
        if self.faults:
            raise self.faults.pop(0)
        return await super().apply(batch)


def test_ready_again_when_a_retried_transient_fault_ends_in_a_poison_event() -> None:
    health = ProjectorHealth()
    processor, registry = make(FlakyThenPoison(), health)

    async def scenario() -> None:
        await processor.start()
        health.assigned = True
        await processor.process(as_records(user_history("q")))
    asyncio.run(scenario())

    assert value(registry, "cqrs_projector_records_total", outcome="dead_lettered") == 1
    assert (health.readiness().ok, health.readiness().reason) == (True, "started")


def test_readiness_waits_for_the_store_and_the_assignment_and_not_rebalancing() -> None:
    health = ProjectorHealth()
    assert health.readiness().reason == "starting the store"
    health.store_started = True
    assert health.readiness().reason == "waiting for partition assignment"
    health.assigned = True
    assert health.readiness().ok
    health.rebalancing = True
    assert (health.readiness().ok, health.readiness().reason) == (False, "rebalancing")


def test_liveness_a_batch_without_progress_for_60s_is_stuck_an_idle_loop_is_not() -> None:
    now = [0.0]
    health = ProjectorHealth(clock=lambda: now[0])
    now[0] = 59.0
    assert health.liveness().ok
    now[0] = 61.0
    assert not health.liveness().ok  # not even the event loop's timer beat
    health.idle_beat()
    assert health.liveness().ok
    health.busy(True)
    now[0] = 200.0
    health.idle_beat()  # the event loop turns, but the batch made no progress
    assert not health.liveness().ok
    health.beat()  # a retry attempt
    assert health.liveness().ok


def test_lag_is_end_minus_checkpoint_minus_one_less_the_transaction_markers() -> None:
    # 10 events at 0..9 in one transaction, its commit marker at 10: end 11.
    assert records_behind(PartitionOffsets(11, 11, 9), checkpoint=9) == 0
    assert records_behind(PartitionOffsets(11, 11, None), checkpoint=9) == 0  # after a seek
    assert records_behind(PartitionOffsets(11, 11, 9), checkpoint=4) == 6  # delivered, unapplied
    assert records_behind(PartitionOffsets(11, 5, 4), checkpoint=4) == 6
    assert records_behind(PartitionOffsets(11, None, None), checkpoint=None) == 11
    assert records_behind(PartitionOffsets(None, None, None), checkpoint=3) is None


def test_refresher_sets_lag_per_assigned_partition_and_lag_seconds() -> None:
    processor, registry = make(FakeStore())
    records = as_records(stream("user-a", [UserCreated(email="a@x.io", name="a"),
                                           UserNameChanged(name="b")]))
    asyncio.run(processor.process(records[:1]))
    topic, partition, offset = records[0].topic, records[0].partition, records[0].offset
    other = (partition + 1) % 3
    offsets: dict[int, PartitionOffsets] = {
        partition: PartitionOffsets(offset + 6, offset + 1, offset),
        other: PartitionOffsets(0, 0, None)}
    now = [NOW + 10]

    async def depth() -> int:
        return 7

    def current() -> Mapping[int, PartitionOffsets]:
        return offsets

    refresher = Refresher(processor, topic, current, depth, clock=lambda: now[0])
    assert registry.get_sample_value("cqrs_projector_dlq_depth", LABELS) is None  # unread
    asyncio.run(refresher.refresh())
    assert value(registry, "cqrs_projector_lag", partition=str(partition)) == 5
    assert value(registry, "cqrs_projector_lag", partition=str(other)) == 0
    # Lag just seen, nothing applied since: not the age of the last applied event (40 s).
    assert value(registry, "cqrs_projector_lag_seconds") == 0
    assert value(registry, "cqrs_projector_dlq_depth") == 7
    now[0] += 3
    asyncio.run(refresher.refresh())
    assert value(registry, "cqrs_projector_lag_seconds") == 3  # since the lag was first seen

    asyncio.run(processor.process(records[1:]))  # applied since: its occurred_at counts
    offsets[partition] = PartitionOffsets(offset + 6, offset + 2, offset + 1)
    asyncio.run(refresher.refresh())
    assert value(registry, "cqrs_projector_lag", partition=str(partition)) == 4
    assert value(registry, "cqrs_projector_lag_seconds") == now[0] - T0.timestamp()

    del offsets[other]  # revoked
    offsets[partition] = PartitionOffsets(offset + 2, offset + 2, offset + 1)
    asyncio.run(refresher.refresh())
    assert registry.get_sample_value("cqrs_projector_lag",
                                     {**LABELS, "partition": str(other)}) is None
    assert value(registry, "cqrs_projector_lag", partition=str(partition)) == 0
    assert value(registry, "cqrs_projector_lag_seconds") == 0


def test_lag_seconds_grows_while_a_process_that_applied_nothing_lags() -> None:
    processor, registry = make(FakeStore())
    now = [NOW]
    offsets = {0: PartitionOffsets(100, 0, None)}
    refresher = Refresher(processor, "t.events", lambda: offsets, None, clock=lambda: now[0])
    refresher.refresh_lag()
    now[0] += 12
    refresher.refresh_lag()
    assert value(registry, "cqrs_projector_lag", partition="0") == 100
    assert value(registry, "cqrs_projector_lag_seconds") == 12


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_endpoints_serve_metrics_liveness_and_readiness() -> None:
    registry = CollectorRegistry()
    ProjectorMetrics(registry, "t.", "postgres").count("applied", 3)
    health = ProjectorHealth()
    server = serve(0, registry, health, host="127.0.0.1")
    base = f"http://127.0.0.1:{server.port}"
    try:
        status, body = get(f"{base}/metrics")
        assert status == 200
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        applied = [s for s in families["cqrs_projector_records"].samples
                   if s.labels.get("outcome") == "applied" and s.name.endswith("_total")]
        assert [s.value for s in applied] == [3.0]
        assert get(f"{base}/livez")[0] == 200
        status, body = get(f"{base}/readyz")
        assert (status, json.loads(body)) == (503, {"status": "not ready",
                                                    "reason": "starting the store"})
        health.store_started = health.assigned = True
        status, body = get(f"{base}/readyz")
        assert (status, json.loads(body)) == (200, {"status": "ready", "reason": "started"})
        assert get(f"{base}/other")[0] == 404
    finally:
        server.close()
