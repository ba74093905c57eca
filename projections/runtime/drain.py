"""Faust's fetch-and-deliver loop without a set of asyncio tasks per record.

faust-streaming's `Consumer._drain_messages` hands every fetched record to the conductor as
`wait_first(callback(message), suspend_flow.wait())`: four tasks (the callback, the suspend
event, the service's stopped and crashed events) and an `asyncio.wait` per record, whether or not
the callback ever has to wait. The callback almost never does: it decodes the raw record and puts
it on the agent's channel queue; it only blocks while flow is suspended (a rebalance), the
producer is backed up, or the queue is full.

`deliver` runs the callback's first step inline. If that step finishes it, the record is on the
queue and no task was made. If the callback suspended (it is waiting for one of the above), the
rest of it is handed to Faust's own `wait_first` with `suspend_flow`, exactly as Faust does, so a
rebalance still interrupts a blocked delivery. While flow is suspended, delivery goes through
`wait_first` from the start, as in Faust.

`drain_messages` is faust-streaming 0.15.3's `_drain_messages` with that one call replaced
(offset bookkeeping, gaps, `commit_every` and stop handling unchanged).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING


class _Resumed:
    """The remainder of a coroutine whose first step already ran and yielded `pending`."""

    __slots__ = ("_coroutine", "_pending")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coroutine = coroutine
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, pending = self._coroutine, self._pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as error:  # cancellation included: pass it into the callback
                try:
                    pending = coroutine.throw(error)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coroutine.send(sent)
                except StopIteration as stop:
                    return stop.value


async def deliver(consumer: Any, callback: Callable[[Any], Coroutine[Any, Any, Any]],
                  message: Any) -> None:
    """`await consumer.wait_first(callback(message), consumer.suspend_flow.wait())`, without
    the tasks when the callback completes in its first step (see the module docstring)."""
    coroutine = callback(message)
    suspend_flow = consumer.suspend_flow
    if suspend_flow.is_set():
        await consumer.wait_first(coroutine, suspend_flow.wait())
        return
    try:
        pending = coroutine.send(None)
    except StopIteration:
        return
    remainder: Awaitable[Any] = _Resumed(coroutine, pending)
    await consumer.wait_first(remainder, suspend_flow.wait())


async def drain_messages(consumer: Any, fetcher: Any,
                         delivered: dict[tuple[str, int], int] | None = None) -> None:
    """faust-streaming 0.15.3 `Consumer._drain_messages`, delivering through `deliver`; the
    offset of each record delivered is also kept in `delivered` (per `(topic, partition)`)."""
    if delivered is None:
        delivered = {}
    callback = consumer.callback
    getmany = consumer.getmany
    consumer_should_stop = consumer._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    get_read_offset = consumer._read_offset.__getitem__
    set_read_offset = consumer._read_offset.__setitem__
    set_flag = consumer.diag.set_flag
    unset_flag = consumer.diag.unset_flag
    commit_every = consumer._commit_every
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    yield_every = 100
    num_since_yield = 0
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            batch = getmany(timeout=1.0)
            # Faust: getmany can loop without releasing the event loop.
            await consumer.sleep(0)
            if not consumer.should_stop:
                async for tp, message in batch:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await asyncio.sleep(0)
                        num_since_yield = 0
                    offset = message.offset
                    read_offset = get_read_offset(tp)
                    if read_offset is None or offset >= read_offset:
                        gap = offset - (read_offset or 0)
                        if gap > 1 and read_offset and acks_enabled_for(message.topic):
                            await consumer._add_gap(tp, read_offset + 1, offset)
                        if commit_every is not None and consumer._n_acked >= commit_every:
                            consumer._n_acked = 0
                            await consumer.commit()
                        await deliver(consumer, callback, message)
                        set_read_offset(tp, offset)
                        delivered[tp] = offset
            unset_flag(CONSUMER_FETCHING)
    except consumer.consumer_stopped_errors:
        if consumer.transport.app.should_stop:
            consumer.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if consumer.transport.app.should_stop:
            consumer.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as error:
        consumer.log.exception("Drain messages raised: %r", error)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)
