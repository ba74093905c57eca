"""Reads on start and on partition assignment (parked streams, checkpoints) outlast a store that
is down: transient faults are retried with the batch path's backoff, then the consumer seeks to
checkpoint + 1; other faults stop the process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest
from faust.types import TP

from projections.postgres.fake import FakeStore
from projections.runtime import Backoff, BatchProcessor, TransientError, make_projector_app
from projections.runtime.app import CHECKPOINT_WAIT_MARGIN
from tests.unit.test_projection_processor import ListDeadLetters
from topics import Catalogue, KafkaConnection

TOPIC = "t.events"
FAST = Backoff(initial=0.001, maximum=0.001)


class FlakyStore(FakeStore):
    """A `FakeStore` whose reads fail with `TransientError` a given number of times first."""

    def __init__(self, checkpoint_faults: int = 0, parked_faults: int = 0) -> None:
        super().__init__()
        self.faults = {"checkpoints": checkpoint_faults, "parked_streams": parked_faults}
        self.calls = {"checkpoints": 0, "parked_streams": 0}

    def _maybe_fail(self, what: str) -> None:
        self.calls[what] += 1
        if self.faults[what] > 0:
            self.faults[what] -= 1
            raise TransientError(f"{what}: connection refused")

    async def checkpoints(self, topic: str) -> dict[int, int]:
        self._maybe_fail("checkpoints")
        return await super().checkpoints(topic)

    async def parked_streams(self) -> set[str]:
        self._maybe_fail("parked_streams")
        return await super().parked_streams()


class FakeConsumerThread:
    """Stands in for the aiokafka consumer thread: an assignment, Faust's committed offsets, the
    seeks made and the offsets committed."""

    def __init__(self, assigned: set[TP], committed: Mapping[TP, int]) -> None:
        self.assigned = assigned
        self.committed = dict(committed)
        self.seeks: dict[tuple[str, int], int] = {}
        self.commits: list[dict[tuple[str, int], int]] = []

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return dict(self.committed)

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    def seek(self, partition: Any, offset: int) -> None:
        self.seeks[(partition.topic, partition.partition)] = offset

    async def commit(self, offsets: Mapping[TP, int]) -> bool:
        self.commits.append({(tp.topic, tp.partition): offset for tp, offset in offsets.items()})
        self.committed.update(offsets)
        return True


def consumer_of(store: FakeStore, thread: FakeConsumerThread, fatal_errors: list[BaseException],
                checkpoint_wait: float | None = None) -> Any:
    """The app's `CheckpointConsumer` over `thread`; call inside the running event loop (Faust
    binds the app to the current loop, which `asyncio.run` then closes)."""
    app = make_projector_app("postgres", KafkaConnection(), Catalogue(prefix="t."), store,
                             backoff=FAST, checkpoint_wait=checkpoint_wait,
                             fatal=fatal_errors.append)
    consumer: Any = app.consumer
    consumer._thread.thread_loop.close()  # the real thread's loop, never started here
    consumer._thread = thread
    return consumer


def recording_sleep() -> tuple[list[float], Any]:
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    return delays, sleep


def test_checkpoints_read_is_retried_with_the_batch_backoff() -> None:
    store = FlakyStore(checkpoint_faults=4)
    store.checkpoint_rows = {(TOPIC, 0): 41, ("other", 0): 7}
    delays, sleep = recording_sleep()
    processor = BatchProcessor("postgres", store, ListDeadLetters(), sleep=sleep)

    assert asyncio.run(processor.checkpoints(TOPIC)) == {0: 41}
    assert store.calls["checkpoints"] == 5
    assert delays == [0.1, 0.2, 0.4, 0.8]  # Backoff(): the policy of store.apply's retries


def test_parked_streams_read_at_start_is_retried() -> None:
    store = FlakyStore(parked_faults=3)
    store.blocked = {"user-p": (TOPIC, 1, 5)}
    delays, sleep = recording_sleep()
    processor = BatchProcessor("postgres", store, ListDeadLetters(), sleep=sleep)

    asyncio.run(processor.start())
    assert processor.parked_streams == {"user-p"}
    assert store.calls["parked_streams"] == 4
    assert delays == [0.1, 0.2, 0.4]


def test_rebalance_while_the_store_is_down_waits_then_seeks_to_checkpoint_plus_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore(checkpoint_faults=3, parked_faults=2)
    store.checkpoint_rows = {(TOPIC, 0): 41, (TOPIC, 2): 9}
    fatal_errors: list[BaseException] = []
    assigned = {TP(TOPIC, 0), TP(TOPIC, 1), TP(TOPIC, 2)}
    thread = FakeConsumerThread(assigned, committed={TP(TOPIC, 0): 3, TP(TOPIC, 1): 17})

    async def rebalance() -> Mapping[TP, int]:
        consumer = consumer_of(store, thread, fatal_errors)
        positions: Mapping[TP, int] = await consumer.seek_to_committed()
        return positions

    with caplog.at_level(logging.WARNING, logger="projections.runtime"):
        positions = asyncio.run(rebalance())

    assert thread.seeks == {(TOPIC, 0): 42, (TOPIC, 2): 10}
    # partition 1 has no checkpoint yet: Faust's committed offset stands
    assert dict(positions) == {TP(TOPIC, 0): 42, TP(TOPIC, 1): 17, TP(TOPIC, 2): 10}
    # parked streams: 2 faults and a read at start, one more read at the assignment
    assert store.calls == {"checkpoints": 4, "parked_streams": 4}
    retried = [getattr(r, "operation", None) for r in caplog.records
               if r.getMessage() == "transient fault"]
    assert retried.count("store.checkpoints") == 3
    assert retried.count("store.parked_streams") == 2
    assert not fatal_errors


def test_rebalance_is_cancelled_cleanly_while_the_store_stays_down() -> None:
    store = FlakyStore(checkpoint_faults=10**9)
    fatal_errors: list[BaseException] = []
    thread = FakeConsumerThread({TP(TOPIC, 0)}, committed={TP(TOPIC, 0): 3})

    async def scenario() -> None:
        consumer = consumer_of(store, thread, fatal_errors)
        task = asyncio.ensure_future(consumer.seek_to_committed())
        while store.calls["checkpoints"] < 5:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert thread.seeks == {}  # never seeks anywhere on a guess
    assert not fatal_errors


def test_a_bug_in_the_checkpoints_read_stops_the_process() -> None:
    class BrokenStore(FakeStore):
        async def checkpoints(self, topic: str) -> dict[int, int]:
            raise KeyError("bug")

    fatal_errors: list[BaseException] = []
    thread = FakeConsumerThread({TP(TOPIC, 0)}, committed={})

    async def rebalance() -> None:
        await consumer_of(BrokenStore(), thread, fatal_errors).seek_to_committed()

    with pytest.raises(KeyError):
        asyncio.run(rebalance())
    assert [type(error) for error in fatal_errors] == [KeyError]
    assert thread.seeks == {}


def test_a_store_down_until_fausts_seek_timeout_exits_the_process_rather_than_stall() -> None:
    # Faust's recovery stops silently when the seek outlasts broker_request_timeout: exit first.
    store = FlakyStore(checkpoint_faults=10**9)
    fatal_errors: list[BaseException] = []
    thread = FakeConsumerThread({TP(TOPIC, 0)}, committed={TP(TOPIC, 0): 3})

    async def rebalance() -> None:
        await consumer_of(store, thread, fatal_errors, checkpoint_wait=0.2).seek_to_committed()

    with pytest.raises(TransientError):
        asyncio.run(rebalance())
    assert [type(error) for error in fatal_errors] == [TransientError]
    assert "unreadable" in str(fatal_errors[0])
    assert store.calls["checkpoints"] > 1
    assert thread.seeks == {}


def test_the_checkpoints_wait_stays_under_fausts_seek_timeout() -> None:
    async def build() -> float:
        app = make_projector_app("postgres", KafkaConnection(), Catalogue(prefix="t."), FakeStore())
        app.consumer._thread.thread_loop.close()  # type: ignore[attr-defined]
        return float(app.conf.broker_request_timeout)

    assert asyncio.run(build()) - CHECKPOINT_WAIT_MARGIN > 1
