"""The batch processor: classify, park, dead-letter, apply with retries, count. No Faust here.

Contract, per batch of records (in partition order):

- Every record is classified by `projections.runtime.classify` (the one classification all
  projectors share): an `Item` is applied, a `Skip` (a tombstone) is counted as skipped, a
  `Poison` is dead-lettered. A record's content never stops the process.
- The store may refuse an item: `PoisonEvent(index, cause)` names it; any other exception but
  `TransientError` from `apply` makes the processor apply the batch again item by item, and every
  item whose single-item `apply` fails (not transiently) is poison too, logged at error level.
- A poison record is published to the DLQ, durably, before the checkpoint moves past it; when it
  names a valid stream, that stream is blocked and every later record of it is parked (kept by
  the store, not applied), in this batch and in later ones, across restarts. Other streams go on.
  An erasure of a blocked stream (`Event.erases_stream`) is applied all the same, and the stream
  released (its parked records and block deleted with the batch): it supersedes the events held.
- `TransientError` from the store or the DLQ is retried in place with capped exponential backoff,
  forever (until the task is cancelled); so are the reads at start and on partition assignment
  (`start`: parked streams, `checkpoints`) and of the partition count (first batch). Only a
  fault that no single record explains (the batch's parked records and checkpoints alone cannot
  be written, a reader fails) propagates: the process must stop rather than skip events.
- Counters hold `consumed == applied + skipped + parked + dead_lettered` after every batch,
  and so do the Prometheus counters (`ProjectorMetrics`), with batch sizes, store commit
  durations, event ages (of the items each committed apply held) and transient faults;
  `ProjectorHealth` learns when the store started, when a batch is in progress, and while a
  fault is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import TypeVar

from prometheus_client import CollectorRegistry

from projections.runtime.classify import Classified, Poison, Skip, classify
from projections.runtime.errors import PoisonEvent, TransientError
from projections.runtime.health import ProjectorHealth
from projections.runtime.metrics import ProjectorMetrics
from projections.runtime.records import (
    Applied,
    Batch,
    DeadLetters,
    Item,
    SourceRecord,
    Store,
    last_offsets,
)
from topics import deadletter

logger = logging.getLogger("projections.runtime")

_T = TypeVar("_T")
Position = tuple[str, int, int]
Partitions = int | Callable[[], Awaitable[int]] | None
"""The events topic's partition count (checked by `classify`), a reader of it (called once at
the first batch, `TransientError` retried), or `None` to leave the partition unchecked."""


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
    dead: list[tuple[SourceRecord, Poison]]
    skipped: int


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
        *,
        partitions: Partitions = None,
        metrics: ProjectorMetrics | None = None,
        health: ProjectorHealth | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.store = store
        self.dead_letters = dead_letters
        self.counters = Counters()
        self.metrics = metrics or ProjectorMetrics(CollectorRegistry(), "", name)
        self.health = health or ProjectorHealth()
        self._clock = clock
        self._checkpoints: dict[tuple[str, int], int] = {}
        self._applied_at: dict[tuple[str, int], float] = {}
        self._backoff = backoff
        self._sleep = sleep
        self._partitions_source = partitions
        self._partitions = partitions if isinstance(partitions, int) else None
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
            self.health.store_started = True
            self.metrics.parked_streams(len(self._parked))

    async def checkpoints(self, topic: str) -> dict[int, int]:
        """The store's checkpoints of `topic`, after `start`; `TransientError` is retried with
        the batch path's backoff until the store answers (or the task is cancelled), never
        answered with a guess: seeking anywhere but checkpoint + 1 would skip or replay events.

        Read on every partition assignment, with the parked streams again: a partition this
        instance takes over may hold streams another instance blocked since this one started
        (their later events must stay parked here too), or released."""
        await self.start()
        parked = await self._retry(self.store.parked_streams, "store.parked_streams")
        self._parked = parked
        self.metrics.parked_streams(len(parked))
        found = await self._retry(partial(self.store.checkpoints, topic), "store.checkpoints")
        self._checkpoints.update({(topic, partition): offset
                                  for partition, offset in found.items()})
        return found

    def checkpoint(self, topic: str, partition: int) -> int | None:
        """The last offset of `topic[partition]` the store accounts for, as this process knows
        it (read on assignment, moved by every batch); `None` before either."""
        return self._checkpoints.get((topic, partition))

    def last_applied_at(self, topic: str, partition: int) -> float | None:
        """`occurred_at` (epoch seconds) of the last event of `topic[partition]` this process
        applied, or `None`."""
        return self._applied_at.get((topic, partition))

    @property
    def parked_streams(self) -> frozenset[str]:
        return frozenset(self._parked)

    @property
    def partitions(self) -> int | None:
        """The events topic's partition count `classify` checks against (after `start`)."""
        return self._partitions

    async def process(self, records: Sequence[SourceRecord]) -> Applied:
        """Account for every record of `records` exactly once (see the module contract)."""
        self.health.busy(True)
        try:
            return await self._process(records)
        finally:
            self.health.busy(False)

    async def _process(self, records: Sequence[SourceRecord]) -> Applied:
        source = self._partitions_source
        if self._partitions is None and source is not None and not isinstance(source, int):
            # Read once, with the first records (Kafka answers then), not at start: the start
            # runs inside a rebalance, whose time Faust bounds.
            self._partitions = await self._retry(source, "partitions")
        classified = {_position(r): classify(r, self._partitions) for r in records}
        sent: set[Position] = set()
        store_faults = self._backoff.delays()
        while True:
            plan = self._plan(records, classified)
            await self._send_dead(plan, sent)
            batch = plan.batch
            try:
                result = await self._retry(partial(self._apply, batch), "store.apply")
            except PoisonEvent as poisoned:
                if 0 <= poisoned.index < len(batch.items):
                    item = batch.items[poisoned.index]
                    classified[_position(item.record)] = Poison(poisoned.cause, item.stream_id)
                    continue
                unplaced: BaseException = poisoned
            except Exception as error:  # not transient, not placed: find the culprit(s)
                unplaced = error
            else:
                break
            try:
                plan, result = await self._isolate(records, classified, sent, unplaced)
            except StoreFault as fault:
                await self._wait_out(fault, store_faults())
                continue
            break
        # The batch's own changes, onto what is known now: an assignment may have read the
        # parked streams again while the batch was in the store.
        blocked = {stream_id for stream_id, _ in plan.batch.blocked}
        self._parked = (self._parked - set(plan.batch.released)) | blocked
        if logger.isEnabledFor(logging.DEBUG):
            for item in plan.batch.items:
                logger.debug("applied", extra={**_ids(item), "projector": self.name})
        total = Applied(result.applied, result.skipped + plan.skipped)
        self._count(len(records), total, len(plan.batch.parked), len(plan.dead))
        self._observe(records, plan.batch)
        return total

    async def _apply(self, batch: Batch) -> Applied:
        """`store.apply`, its duration observed when it succeeds (a commit)."""
        began = time.perf_counter()
        result = await self.store.apply(batch)
        self.metrics.committed(time.perf_counter() - began)
        return result

    def _observe(self, records: Sequence[SourceRecord], committed: Batch) -> None:
        """Metrics of a batch the store committed: `committed.items` are exactly the items
        applied (or skipped as already applied); its checkpoints are the new positions. The
        event age is observed once per partition of the batch (its last item there, the one
        applied last), not per item: the hot path pays one clock read per batch."""
        last: dict[tuple[str, int], Item] = {}
        for item in committed.items:
            last[(item.record.topic, item.record.partition)] = item
        if last:
            now = self._clock()
            ages = []
            for where, item in last.items():
                occurred = item.envelope.occurred_at.timestamp()
                ages.append(now - occurred)
                self._applied_at[where] = occurred
            self.metrics.event_ages(ages)
        self._checkpoints.update(committed.checkpoints)
        self.metrics.batch(len(records))
        self.metrics.parked_streams(len(self._parked))

    async def _isolate(
        self,
        records: Sequence[SourceRecord],
        classified: dict[Position, Classified],
        sent: set[Position],
        error: BaseException,
    ) -> tuple[_Plan, Applied]:
        """The batch item by item (each its own `apply`), so an exception that names no item
        is pinned on the item(s) that raise it alone; then the parked, blocked and checkpoints."""
        logger.error(
            "store.apply failed: applying the batch item by item", exc_info=error,
            extra={"projector": self.name, "error": f"{type(error).__name__}: {error}"})
        done: set[Position] = set()
        applied = skipped = 0
        before = dict(classified)
        plan = self._plan(records, classified)
        pending = list(plan.batch.items)
        failures: list[BaseException] = []
        while pending:
            item = pending.pop(0)
            where = _position(item.record)
            if where in done:
                continue
            try:
                result = await self._retry(
                    partial(self._apply, Batch([item])), "store.apply(item)")
            except Exception as failed:  # transient faults were retried: this one is the item's
                cause = failed.cause if isinstance(failed, PoisonEvent) else failed
                logger.error(
                    "store refused one event",
                    extra={**_ids(item), "projector": self.name, "topic": item.record.topic,
                           "error": f"{type(cause).__name__}: {cause}"})
                classified[where] = Poison(cause, item.stream_id)
                failures.append(failed)
                plan = self._plan(records, classified)
                pending = [i for i in plan.batch.items if _position(i.record) not in done]
                continue
            done.add(where)
            applied += result.applied
            skipped += result.skipped
        if _store_fault(error, failures, succeeded=bool(done)):
            classified.clear()
            classified.update(before)
            raise StoreFault(error)
        await self._send_dead(plan, sent)
        rest = Batch([], plan.batch.parked, plan.batch.blocked, plan.batch.checkpoints,
                     plan.batch.released)
        await self._retry(partial(self._apply, rest), "store.apply(rest)")
        return plan, Applied(applied, skipped)

    async def _wait_out(self, fault: StoreFault, delay: float) -> None:
        """A fault of the store itself (every event of a batch refused alike): nothing is
        dead-lettered; the batch is tried again after `delay`, like a transient fault."""
        logger.error(
            "store refuses every event alike: retrying the batch, dead-lettering none",
            extra={"projector": self.name, "retry_in": round(delay, 3),
                   "error": f"{type(fault.cause).__name__}: {fault.cause}"})
        self.metrics.transient_fault()
        self.health.fault = f"store fault {type(fault.cause).__name__}"
        self.health.beat()
        await self._sleep(delay)
        self.health.fault = None

    def _plan(self, records: Sequence[SourceRecord],
              classified: dict[Position, Classified]) -> _Plan:
        parked_streams = set(self._parked)
        items: list[Item] = []
        parked: list[tuple[str, SourceRecord]] = []
        dead: list[tuple[SourceRecord, Poison]] = []
        blocked: list[tuple[str, SourceRecord]] = []
        released: list[str] = []
        skipped = 0
        for record in records:
            found = classified[_position(record)]
            if isinstance(found, Skip):
                skipped += 1
                continue
            stream_id = found.stream_id
            if (stream_id is not None and stream_id in parked_streams
                    and isinstance(found, Item) and found.event.erases_stream):
                # An erasure supersedes what is held back: applied, and the stream released.
                parked_streams.discard(stream_id)
                released.append(stream_id)
                items.append(found)
            elif stream_id is not None and stream_id in parked_streams:
                parked.append((stream_id, record))
            elif isinstance(found, Poison):
                dead.append((record, found))
                if stream_id is not None:
                    parked_streams.add(stream_id)
                    blocked.append((stream_id, record))
            else:
                items.append(found)
        batch = Batch(items, parked, blocked, last_offsets(records), released)
        return _Plan(batch=batch, dead=dead, skipped=skipped)

    async def _send_dead(self, plan: _Plan, sent: set[Position]) -> None:
        for record, poison in plan.dead:
            if _position(record) not in sent:
                await self._dead_letter(record, poison)
                sent.add(_position(record))

    async def _dead_letter(self, record: SourceRecord, poison: Poison) -> None:
        error = poison.error
        logger.warning(
            "dead-lettered",
            extra={"stream_id": poison.stream_id, "partition": record.partition,
                   "offset": record.offset, "projector": self.name, "topic": record.topic,
                   "error": f"{type(error).__name__}: {deadletter.error_text(error)}"},
        )
        await self._retry(partial(self.dead_letters.send, record, error), "dlq.send")

    async def _retry(self, operation: Callable[[], Awaitable[_T]], what: str) -> _T:
        """`operation`, retried with backoff while it raises `TransientError`. `health.fault`
        is set while it is retried and cleared however the retry ends (a success, or any other
        exception, such as `PoisonEvent`, that the caller handles)."""
        next_delay = self._backoff.delays()
        attempt = 0
        try:
            while True:
                try:
                    return await operation()
                except TransientError as error:
                    attempt += 1
                    delay = next_delay()
                    logger.warning(
                        "transient fault",
                        extra={"projector": self.name, "operation": what, "attempt": attempt,
                               "retry_in": round(delay, 3), "error": str(error)},
                    )
                    self.metrics.transient_fault()
                    self.health.fault = f"retrying {what} after {type(error).__name__}"
                    self.health.beat()
                    await self._sleep(delay)
        finally:
            if attempt:
                self.health.fault = None

    def _count(self, consumed: int, result: Applied, parked: int, dead: int) -> None:
        counters = self.counters
        counters.consumed += consumed
        counters.applied += result.applied
        counters.skipped += result.skipped
        counters.parked += parked
        counters.dead_lettered += dead
        for outcome, records in (("applied", result.applied), ("skipped", result.skipped),
                                 ("parked", parked), ("dead_lettered", dead)):
            self.metrics.count(outcome, records)
        logger.info(
            "batch",
            extra={"projector": self.name,
                   "counts": {"consumed": consumed, "applied": result.applied,
                              "skipped": result.skipped, "parked": parked,
                              "dead_lettered": dead},
                   "totals": counters.snapshot()},
        )


def _ids(item: Item) -> dict[str, object]:
    """The shared log fields of an event: its ids, its command's (causation) and position."""
    envelope = item.envelope
    return {"command_id": envelope.causation_id, "correlation_id": envelope.correlation_id,
            "stream_id": envelope.stream_id, "event_id": envelope.event_id,
            "partition": item.record.partition, "offset": item.record.offset}


class StoreFault(Exception):
    """Every event of a batch, applied alone, failed alike: the store's fault, not the events'."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


def _store_fault(error: BaseException, failures: list[BaseException], *, succeeded: bool) -> bool:
    """Whether the item-by-item failures are the store's rather than the items': two or more
    items, none applied, each refused with the batch's own error class and none placed by the
    store as poison (`PoisonEvent`). One item alone is pinned on that item."""
    return (not succeeded and len(failures) >= 2
            and all(type(failure) is type(error) and not isinstance(failure, PoisonEvent)
                    for failure in failures))
