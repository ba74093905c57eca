"""Collecting one transaction's command records: up to N, within T ms, closed once idle."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def collect(
    consumer: Any,
    batch_size: int,
    batch_ms: int,
    idle_ms: int,
    clock: Callable[[], float] = time.monotonic,
) -> list[Any]:
    """The consumed messages of one batch (an empty list when none arrived within `batch_ms`).

    Waits up to `batch_ms` for a first message, then takes more until there are `batch_size`,
    `batch_ms` have passed since the call, or a wait of `idle_ms` ends with the fetched queue
    drained (fewer than asked for). Under a backlog the queue never drains, so a batch still fills
    to `batch_size` (or `batch_ms`); at light load a batch is what had queued plus at most
    `idle_ms` of arrivals, instead of `batch_ms` of them.
    """
    deadline = clock() + batch_ms / 1000
    messages: list[Any] = consumer.consume(num_messages=batch_size, timeout=0)
    if not messages:
        first = consumer.poll(batch_ms / 1000)
        if first is None:
            return []
        messages = [first]
    while len(messages) < batch_size:
        remaining = deadline - clock()
        if remaining <= 0:
            break
        wanted = batch_size - len(messages)
        # consume() returns early only with `wanted` messages: fewer means the fetched queue ran
        # dry within the wait, so what is in hand is all there is for now.
        more = consumer.consume(num_messages=wanted, timeout=min(idle_ms / 1000, remaining))
        messages.extend(more)
        if len(more) < wanted:
            break
    return messages
