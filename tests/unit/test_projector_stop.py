"""A stop (the agent's task cancelled) lets the batch in flight finish: committed and counted, or
not begun; never committed with its counts lost."""

from __future__ import annotations

import asyncio

import pytest

from projections.runtime.app import finished


def test_a_cancelled_wait_lets_the_batch_finish_then_propagates() -> None:
    committed: list[str] = []

    async def batch() -> int:
        await asyncio.sleep(0.05)  # the store's commit
        committed.append("rows")
        await asyncio.sleep(0)  # back in the processor, where the counts are taken
        committed.append("counted")
        return 7

    async def scenario() -> None:
        agent = asyncio.ensure_future(finished(batch(), grace_s=5))
        await asyncio.sleep(0.01)
        agent.cancel()
        with pytest.raises(asyncio.CancelledError):
            await agent
        assert committed == ["rows", "counted"]

    asyncio.run(scenario())


def test_a_batch_that_outlives_the_grace_is_cancelled_too() -> None:
    cancelled = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.sleep(60)  # the store down, retried
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def scenario() -> None:
        agent = asyncio.ensure_future(finished(stuck(), grace_s=0.05))
        await asyncio.sleep(0.01)
        agent.cancel()
        with pytest.raises(asyncio.CancelledError):
            await agent
        await asyncio.wait_for(cancelled.wait(), 1)

    asyncio.run(scenario())


def test_without_a_cancellation_it_is_the_batch() -> None:
    async def batch() -> str:
        return "applied"

    assert asyncio.run(finished(batch(), grace_s=1)) == "applied"
