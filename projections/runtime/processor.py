"""The batch processor: decode, park, dead-letter, apply with retries, count. No Faust here.

Contract, per batch of records (in partition order):

- A record that can never be applied (undecodable, unknown type, upcast failure, or a
  `PoisonEvent` raised by the store, such as an impossible history) is published to the DLQ,
  durably, before the checkpoint moves past it.
- Every later record of that stream is parked (kept by the store, not applied), in this batch and
  in later ones, across restarts. Other streams go on.
- `TransientError` from the store or the DLQ is retried in place with capped exponential backoff,
  forever (until the task is cancelled); so are the reads at start and on partition assignment
  (`start`: parked streams, `checkpoints`). Any other exception propagates: it is a bug, and the
  process must stop rather than skip events.
- Counters hold `consumed == applied + skipped + parked + dead_lettered` after every batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import TypeVar

from projections.runtime.decode import POISON_ERRORS, decode, stream_of
from projections.runtime.errors import PoisonEvent, TransientError
from projections.runtime.records import (
    Applied,
    Batch,
    DeadLetters,
    Item,
    SourceRecord,
    Store,
    last_offsets,
)

logger = logging.getLogger("projections.runtime")

_T = TypeVar("_T")
Position = tuple[str, int, int]


@dataclass
class Counters:
    """What the projector did since it started; `consumed` is the sum of the other four."""

    consumed: int = 0
    applied: int = 0
    skipped: int = 0
    parked: int = 0
    dead_lettered: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff for transient faults."""

    initial: float = 0.1
    maximum: float = 5.0
    factor: float = 2.0

    def delays(self) -> Callable[[], float]:
        current = self.initial / self.factor

        def next_delay() -> float:
            nonlocal current
            current = min(self.maximum, current * self.factor)
            return current

        return next_delay


@dataclass(frozen=True)
class _Plan:
    batch: Batch
    dead: list[tuple[SourceRecord, BaseException]]
    parked_streams: set[str]


def _position(record: SourceRecord) -> Position:
    return (record.topic, record.partition, record.offset)


class BatchProcessor:
    """Applies batches of records through a `Store`; one instance per projector process."""

    def __init__(
        self,
        name: str,
        store: Store,
        dead_letters: DeadLetters,
        backoff: Backoff = Backoff(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self.store = store
        self.dead_letters = dead_letters
        self.counters = Counters()
        self._backoff = backoff
        self._sleep = sleep
        self._parked: set[str] = set()
        self._started = False
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        """Prepare the store and load the parked streams (retrying transient faults); once."""
        async with self._starting:
            if self._started:
                return
            await self._retry(self.store.start, "store.start")
            self._parked = await self._retry(self.store.parked_streams, "store.parked_streams")
            self._started = True

    async def checkpoints(self, topic: str) -> dict[int, int]:
        """The store's checkpoints of `topic`, after `start`; `TransientError` is retried with
        the batch path's backoff until the store answers (or the task is cancelled), never
        answered with a guess: seeking anywhere but checkpoint + 1 would skip or replay events."""
        await self.start()
        return await self._retry(partial(self.store.checkpoints, topic), "store.checkpoints")

    @property
    def parked_streams(self) -> frozenset[str]:
        return frozenset(self._parked)

    async def process(self, records: Sequence[SourceRecord]) -> Applied:
        """Account for every record of `records` exactly once (see the module contract)."""
        poison: dict[Position, BaseException] = {}
        decoded: dict[Position, Item] = {}
        for record in records:
            try:
                decoded[_position(record)] = decode(record)
            except POISON_ERRORS as error:
                poison[_position(record)] = error
        sent: set[Position] = set()
        while True:
            plan = self._plan(records, decoded, poison)
            for record, cause in plan.dead:
                if _position(record) not in sent:
                    await self._dead_letter(record, cause)
                    sent.add(_position(record))
            batch = plan.batch
            try:
                result = await self._retry(partial(self.store.apply, batch), "store.apply")
            except PoisonEvent as poisoned:
                item = batch.items[poisoned.index]
                poison[_position(item.record)] = poisoned.cause
                continue
            self._parked = plan.parked_streams
            self._count(len(records), result, len(plan.batch.parked), len(plan.dead))
            return result

    def _plan(
        self,
        records: Sequence[SourceRecord],
        decoded: dict[Position, Item],
        poison: dict[Position, BaseException],
    ) -> _Plan:
        parked_streams = set(self._parked)
        items: list[Item] = []
        parked: list[tuple[str, SourceRecord]] = []
        dead: list[tuple[SourceRecord, BaseException]] = []
        blocked: list[tuple[str, SourceRecord]] = []
        for record in records:
            item = decoded.get(_position(record))
            stream_id = item.stream_id if item else stream_of(record)
            if stream_id is not None and stream_id in parked_streams:
                parked.append((stream_id, record))
            elif item is None or _position(record) in poison:
                dead.append((record, poison[_position(record)]))
                if stream_id is not None:
                    parked_streams.add(stream_id)
                    blocked.append((stream_id, record))
            else:
                items.append(item)
        batch = Batch(items, parked, blocked, last_offsets(records))
        return _Plan(batch=batch, dead=dead, parked_streams=parked_streams)

    async def _dead_letter(self, record: SourceRecord, error: BaseException) -> None:
        logger.warning(
            "dead-lettered projector=%s topic=%s partition=%d offset=%d stream_id=%s error=%s: %s",
            self.name, record.topic, record.partition, record.offset, stream_of(record),
            type(error).__name__, error,
        )
        await self._retry(partial(self.dead_letters.send, record, error), "dlq.send")

    async def _retry(self, operation: Callable[[], Awaitable[_T]], what: str) -> _T:
        next_delay = self._backoff.delays()
        attempt = 0
        while True:
            try:
                return await operation()
            except TransientError as error:
                attempt += 1
                delay = next_delay()
                logger.warning(
                    "transient fault projector=%s operation=%s attempt=%d retry_in=%.2fs: %s",
                    self.name, what, attempt, delay, error,
                )
                await self._sleep(delay)

    def _count(self, consumed: int, result: Applied, parked: int, dead: int) -> None:
        counters = self.counters
        counters.consumed += consumed
        counters.applied += result.applied
        counters.skipped += result.skipped
        counters.parked += parked
        counters.dead_lettered += dead
        logger.info(
            "batch projector=%s consumed=%d applied=%d skipped=%d parked=%d dead_lettered=%d "
            "total_consumed=%d total_applied=%d total_skipped=%d total_parked=%d total_dead=%d",
            self.name, consumed, result.applied, result.skipped, parked, dead,
            counters.consumed, counters.applied, counters.skipped, counters.parked,
            counters.dead_lettered,
        )
