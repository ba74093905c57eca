"""Whole fetches to the agent: one item per fetch (active partitions only, offsets in order),
dropped while flow is stopped or when a rebalance interrupts the handoff, the applied positions
committed in bulk by Faust's own commit, and a revocation waiting for the batch in flight."""

from __future__ import annotations

import asyncio
from collections import namedtuple
from collections.abc import Awaitable
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service

from projections.postgres.fake import FakeStore
from projections.runtime import make_projector_app
from projections.runtime.app import BatchOptions
from projections.runtime.drain import drain_fetches
from projections.runtime.faust_app import CheckpointConsumer, ProjectorApp
from projections.runtime.fetches import Fetch, InFlight, fetch_of, source_record
from topics import Catalogue, KafkaConnection

TopicPartition = namedtuple("TopicPartition", "topic partition")
Record = namedtuple("Record", "topic partition offset key value headers")


def _records(partition: int, *offsets: int) -> list[Record]:
    return [Record("events", partition, offset, b"k", b"v", [("h", b"1")]) for offset in offsets]


class FakeConsumer(Service):
    """What `drain_fetches` uses of Faust's consumer, fed a list of fetches; mode's real
    `wait_first` with Faust's `suspend_flow` event."""

    consumer_stopped_errors = ()

    def __init__(self, fetches: list[dict[Any, list[Record]]], generation: int = 7) -> None:
        super().__init__()
        self._fetches = fetches
        self.suspend_flow = asyncio.Event()
        self.flow_active = True
        self._read_offset: dict[Any, int | None] = {}
        self.app: Any = type("App", (), {"consumer_generation_id": generation,
                                          "should_stop": False})()
        self.transport: Any = type("Transport", (), {"app": self.app})()
        self.diag: Any = type("Diag", (), {})()
        self.diag.set_flag = self.diag.unset_flag = lambda flag: None
        self.fetcher: Any = type("Fetcher", (), {"_stopped": asyncio.Event()})()

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        if not self._fetches:
            self.fetcher._stopped.set()
            return {}, None
        records = self._fetches.pop(0)
        return records, set(records)


def _drain(consumer: FakeConsumer, handoff: Any) -> Awaitable[None]:
    return drain_fetches(consumer, consumer.fetcher, handoff)


def test_a_fetch_is_one_item_of_source_records_with_its_last_offsets() -> None:
    records = {TopicPartition("events", 0): _records(0, 4, 5, 7),
               TopicPartition("events", 1): _records(1, 2)}
    fetch = fetch_of(records, 3)
    assert fetch is not None
    assert [(r.partition, r.offset) for r in fetch.records] == [(0, 4), (0, 5), (0, 7), (1, 2)]
    assert fetch.last_offsets == {("events", 0): 7, ("events", 1): 2}
    assert fetch.generation == 3
    assert fetch.records[0].headers == (("h", b"1"),)


def test_only_active_partitions_are_kept_and_an_empty_fetch_is_none() -> None:
    records = {TopicPartition("events", 0): _records(0, 1), TopicPartition("events", 1): []}
    assert fetch_of(records, 1, active={TopicPartition("events", 1)}) is None
    kept = fetch_of(records, 1, active={TopicPartition("events", 0)})
    assert kept is not None
    assert kept.last_offsets == {("events", 0): 1}


def test_a_header_without_a_value_reads_as_empty() -> None:
    record = Record("events", 0, 1, None, None, [("a", None), ("b", b"x")])
    assert source_record(record).headers == (("a", b""), ("b", b"x"))


def test_every_fetch_is_handed_off_whole_with_its_generation_and_read_offsets() -> None:
    async def run() -> tuple[list[Fetch], dict[Any, int | None]]:
        consumer = FakeConsumer([{TopicPartition("events", 0): _records(0, 1, 2)},
                                 {TopicPartition("events", 0): _records(0, 4),
                                  TopicPartition("events", 2): _records(2, 9)}])
        handed: list[Fetch] = []

        async def handoff(fetch: Fetch) -> None:
            handed.append(fetch)

        await _drain(consumer, handoff)
        return handed, consumer._read_offset

    handed, read = asyncio.run(run())
    assert [len(f.records) for f in handed] == [2, 2]
    assert {f.generation for f in handed} == {7}
    assert read == {TopicPartition("events", 0): 4, TopicPartition("events", 2): 9}


def test_a_fetch_read_while_flow_is_stopped_is_dropped() -> None:
    async def run() -> list[Fetch]:
        consumer = FakeConsumer([{TopicPartition("events", 0): _records(0, 1)}])
        consumer.flow_active = False
        handed: list[Fetch] = []

        async def handoff(fetch: Fetch) -> None:
            handed.append(fetch)

        await _drain(consumer, handoff)
        return handed

    assert asyncio.run(run()) == []


def test_a_rebalance_interrupts_a_handoff_blocked_on_a_full_channel() -> None:
    async def run() -> bool:
        consumer = FakeConsumer([{TopicPartition("events", 0): _records(0, 1)}])
        never = asyncio.Event()

        async def blocked(fetch: Fetch) -> None:
            await never.wait()

        draining = asyncio.ensure_future(_drain(consumer, blocked))
        await asyncio.sleep(0.05)
        assert not draining.done()
        consumer.suspend_flow.set()
        await asyncio.wait_for(draining, 1.0)
        return draining.done()

    assert asyncio.run(run())


def test_a_revocation_waits_for_the_batch_in_flight() -> None:
    async def run() -> tuple[bool, bool]:
        in_flight = InFlight()
        release = asyncio.Event()

        async def batch() -> None:
            with in_flight.batch():
                await release.wait()

        applying = asyncio.ensure_future(batch())
        await asyncio.sleep(0)
        timed_out = await in_flight.wait_idle(0.01)
        release.set()
        finished = await in_flight.wait_idle(1.0)
        await applying
        return timed_out, finished

    assert asyncio.run(run()) == (False, True)


def _app() -> ProjectorApp:
    app = make_projector_app("postgres", KafkaConnection(), Catalogue(prefix="t."), FakeStore())
    consumer: Any = app.consumer
    consumer._thread.thread_loop.close()  # the real thread's loop, never started here
    return app


def test_faust_commits_the_applied_positions_and_a_revocation_commits_its_last_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def faust_revocation(self: Any, revoked: set[Any]) -> None:
        pass  # the app's part (flow stopped, the batch in flight awaited), not run here

    monkeypatch.setattr(faust_aiokafka.Consumer, "on_partitions_revoked", faust_revocation)

    async def run() -> tuple[dict[Any, int], list[dict[Any, int]], dict[Any, int]]:
        app = _app()
        consumer: Any = app.consumer
        committed: list[dict[Any, int]] = []

        async def commit(offsets: dict[Any, int]) -> bool:
            committed.append(dict(offsets))
            return True

        consumer._commit = commit
        consumer.applied({("t.events", 0): 41, ("t.events", 3): 9})
        before = consumer._filter_committable_offsets(
            list(consumer._filter_tps_with_pending_acks()))
        await consumer.on_partitions_revoked({TopicPartition("t.events", 0)})
        after = consumer._filter_committable_offsets(
            list(consumer._filter_tps_with_pending_acks()))
        return before, committed, after

    before, committed, after = asyncio.run(run())
    assert {(tp.topic, tp.partition): offset for tp, offset in before.items()} == {
        ("t.events", 0): 42, ("t.events", 3): 10}
    assert committed == [{TopicPartition("t.events", 0): 42}]
    assert {(tp.topic, tp.partition) for tp in after} == {("t.events", 3)}


def test_the_agent_reads_a_bounded_channel_and_the_app_has_no_monitor_sensor() -> None:
    async def build() -> tuple[bool, bool, int, bool]:
        app = _app()
        app.on_init_dependencies()
        app.flow_control.resume()  # as Faust does once the partitions are assigned and sought
        current = app.current(Fetch(app.consumer_generation_id, [], {}))
        return (isinstance(app.consumer, CheckpointConsumer), app.monitor in set(app.sensors),
                app.fetches.maxsize, current)

    assert asyncio.run(build()) == (True, False, BatchOptions().queued, True)


def test_a_fetch_of_an_older_generation_is_not_current() -> None:
    async def build() -> bool:
        app = _app()
        app.flow_control.resume()
        return app.current(Fetch(app.consumer_generation_id - 1, [], {}))

    assert asyncio.run(build()) is False


def test_a_rebalance_without_sensors_logs_no_missing_state_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    async def rebalance() -> None:
        app = _app()
        app.on_init_dependencies()
        app.on_rebalance_start()
        app.on_rebalance_return()
        app.on_rebalance_end()

    asyncio.run(rebalance())
    assert not [r for r in caplog.records if "Missing sensor state" in r.getMessage()]


def test_a_revocation_clearing_the_full_channel_drops_the_waiting_fetch_quietly() -> None:
    async def run() -> tuple[bool, BaseException | None, int]:
        app = _app()
        app.flow_control.resume()
        agent_side = app.fetches.__aiter__()  # the agent's subscription: the bounded queue
        for _ in range(BatchOptions().queued):
            await app.hand_off(Fetch(1, [], {}))
        waiting = asyncio.ensure_future(app.hand_off(Fetch(1, [], {})))
        await asyncio.sleep(0.01)
        blocked = not waiting.done()
        app.flow_control.clear()  # what Faust does on revocation
        await asyncio.wait([waiting], timeout=1.0)
        return blocked, waiting.exception() if waiting.done() else None, agent_side.queue.qsize()

    blocked, error, left = asyncio.run(run())
    assert blocked
    assert error is None
    assert left == 0
