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


def stopped(grace_s: float, cancels: int) -> list[str]:
    """An agent awaiting a batch stuck in its store (`finished`), cancelled `cancels` times:
    the order in which the batch ended and the agent's clean-up ran."""
    order: list[str] = []

    async def stuck() -> None:
        try:
            await asyncio.sleep(60)  # the store down, retried
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # its clean-up takes a moment
            order.append("batch ended")
            raise

    async def agent() -> None:
        try:
            await finished(stuck(), grace_s=grace_s)
        finally:
            order.append("store closed")

    async def scenario() -> None:
        task = asyncio.ensure_future(agent())
        for _ in range(cancels):
            await asyncio.sleep(0.01)
            task.cancel()  # a stop; a second: the loop's shutdown cancels what is left
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    return order


def test_a_batch_that_outlives_the_grace_is_cancelled_and_ended_first() -> None:
    assert stopped(grace_s=0.05, cancels=1) == ["batch ended", "store closed"]


def test_a_second_cancellation_cancels_the_batch_and_still_waits_for_it() -> None:
    assert stopped(grace_s=30, cancels=2) == ["batch ended", "store closed"]


def test_an_error_during_the_grace_is_raised_not_lost() -> None:
    async def failing() -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("the store refused the batch")

    async def scenario() -> None:
        task = asyncio.ensure_future(finished(failing(), grace_s=5))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(RuntimeError, match="refused"):
            await task

    asyncio.run(scenario())


def test_without_a_cancellation_it_is_the_batch() -> None:
    async def batch() -> str:
        return "applied"

    assert asyncio.run(finished(batch(), grace_s=1)) == "applied"
