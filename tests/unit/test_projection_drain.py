"""Delivery of fetched records to the conductor: inline when the callback does not wait, through
Faust's `wait_first` with `suspend_flow` (so a rebalance interrupts it) when it does; the
projector app runs without Faust's per-record `Monitor` sensor."""

from __future__ import annotations

import asyncio
from typing import Any

from mode import Service

from projections.postgres.fake import FakeStore
from projections.runtime import make_projector_app
from projections.runtime.app import BatchOptions
from projections.runtime.drain import deliver
from projections.runtime.faust_app import CheckpointConsumer
from topics import Catalogue, KafkaConnection


class FakeConsumer(Service):
    """Mode's real `wait_first`, counting its calls, with Faust's `suspend_flow` event."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()
        self.wait_first_calls = 0

    async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
        self.wait_first_calls += 1
        return await super().wait_first(*coros, timeout=timeout)


class Conductor:
    """A conductor callback that puts messages on a bounded queue, as Faust's does."""

    def __init__(self, maxsize: int = 0) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize)
        self.lock = asyncio.Lock()

    async def __call__(self, message: str) -> None:
        async with self.lock:
            pass
        await self.queue.put(message)


def test_a_callback_that_does_not_wait_is_delivered_inline_without_tasks() -> None:
    async def run() -> tuple[list[str], int]:
        consumer, conductor = FakeConsumer(), Conductor()
        for message in ("a", "b", "c"):
            await deliver(consumer, conductor, message)
        return [conductor.queue.get_nowait() for _ in range(3)], consumer.wait_first_calls

    assert asyncio.run(run()) == (["a", "b", "c"], 0)


def test_a_callback_that_waits_finishes_through_wait_first() -> None:
    async def run() -> tuple[list[str], int]:
        consumer, conductor = FakeConsumer(), Conductor(maxsize=1)
        await deliver(consumer, conductor, "a")
        blocked = asyncio.ensure_future(deliver(consumer, conductor, "b"))
        await asyncio.sleep(0.01)
        assert not blocked.done()  # the queue is full: "b" waits
        first = conductor.queue.get_nowait()
        await asyncio.wait_for(blocked, 1)
        return [first, conductor.queue.get_nowait()], consumer.wait_first_calls

    assert asyncio.run(run()) == (["a", "b"], 1)


def test_suspending_flow_interrupts_a_waiting_delivery() -> None:
    async def run() -> tuple[bool, int]:
        consumer, conductor = FakeConsumer(), Conductor(maxsize=1)
        await deliver(consumer, conductor, "a")
        blocked = asyncio.ensure_future(deliver(consumer, conductor, "b"))
        await asyncio.sleep(0.01)
        consumer.suspend_flow.set()  # a rebalance: Faust's stop_flow()
        await asyncio.wait_for(blocked, 1)
        conductor.queue.get_nowait()
        await asyncio.sleep(0.01)  # the cancelled callback must not put "b" after all
        return conductor.queue.empty(), consumer.wait_first_calls

    assert asyncio.run(run()) == (True, 1)


def test_while_flow_is_suspended_delivery_goes_through_wait_first() -> None:
    async def run() -> int:
        consumer, conductor = FakeConsumer(), Conductor()
        consumer.suspend_flow.set()
        await deliver(consumer, conductor, "a")
        return consumer.wait_first_calls

    assert asyncio.run(run()) == 1


def test_an_error_in_the_callback_propagates() -> None:
    async def failing(message: str) -> None:
        raise ValueError(message)

    async def run() -> str:
        try:
            await deliver(FakeConsumer(), failing, "bad")
        except ValueError as error:
            return str(error)
        return "no error"

    assert asyncio.run(run()) == "bad"


def test_the_projector_app_drains_through_deliver_and_has_no_monitor_sensor() -> None:
    async def build() -> tuple[bool, bool]:
        app = make_projector_app("postgres", KafkaConnection(), Catalogue(prefix="t."), FakeStore())
        consumer: Any = app.consumer
        consumer._thread.thread_loop.close()  # the real thread's loop, never started here
        app.on_init_dependencies()
        return isinstance(consumer, CheckpointConsumer), app.monitor in set(app.sensors)

    assert asyncio.run(build()) == (True, False)


def test_the_default_batch_window_is_short() -> None:
    assert BatchOptions().within <= 0.05
