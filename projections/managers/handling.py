"""What the managers' agents do with one record, without Faust: classify, decide, send, store.

Every record consumed ends as exactly one outcome, counted (`Counters`) and measured
(`ManagerMetrics`): `applied` (forwarded as a fact, or a fact applied to the manager's state),
`skipped` (with a reason: a tombstone, an event the managers do not act on, a fact already
applied), or `dead_lettered` (published to `<prefix>managers.dlq` with the shared
bounded copy of `topics.deadletter`, before the record's offset can be committed). A record's
content never raises out of `handle`; transient faults of the broker (a dead letter, a command
or the partition count not written/read) are retried in place with capped backoff, forever.

The order of effects in `ManagerStage.handle` is the crash-safety argument: the commands a fact
decides are sent and acknowledged (acks=all) before the customer's new state is written to the
table (and so to its changelog), and the fact's offset is committed after both. A crash anywhere
leaves either the old state (the fact is decided again: the same command ids, answered
`duplicate`) or the new one (the commands are already in the log).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Protocol, TypeVar

from projections.managers.commands import OutgoingCommand, cancel_order
from projections.managers.decide import decide
from projections.managers.facts import Fact, decode_fact
from projections.managers.metrics import ManagerMetrics
from projections.managers.routing import Forward, route
from projections.managers.state import decode_state, encode_state
from projections.runtime.classify import Poison, Skip, classify
from projections.runtime.errors import TransientError, WrongPartition
from projections.runtime.processor import Backoff
from projections.runtime.records import DeadLetters, SourceRecord
from topics import partition_for

logger = logging.getLogger("projections.managers")

_T = TypeVar("_T")
ROUTER = "router"
"""The stage name of the router (the managers' stages are named after them)."""


class KeyValue(Protocol):
    """A table as the stages use it (a Faust `Table` of bytes, or a dict in tests)."""

    def get(self, key: bytes, default: None = None) -> bytes | None: ...

    def __setitem__(self, key: bytes, value: bytes) -> None: ...


@dataclass
class Counters:
    """One stage's records since start: `consumed == applied + skipped + dead_lettered`."""

    consumed: int = 0
    applied: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    commands: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


class Stage:
    """What the router and the managers share: outcomes, dead letters, retries."""

    def __init__(self, name: str, dead_letters: DeadLetters,
                 partitions: Callable[[], Awaitable[int]], metrics: ManagerMetrics,
                 backoff: Backoff | None = None) -> None:
        self.name = name
        self.counters = Counters()
        self._dead_letters = dead_letters
        self._partitions = partitions
        self._partition_count: int | None = None
        self._metrics = metrics
        self._backoff = backoff or Backoff()

    async def partitions(self) -> int:
        """The events topic's partition count (the facts and commands topics have as many),
        read once from the broker."""
        if self._partition_count is None:
            self._partition_count = await self.retrying("partition count", self._partitions)
        return self._partition_count

    async def retrying(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        delays = self._backoff.delays()
        attempt = 0
        while True:
            try:
                return await call()
            except TransientError as error:
                attempt += 1
                delay = delays()
                logger.warning("transient fault", extra={
                    "stage": self.name, "operation": what, "attempt": attempt,
                    "retry_in": round(delay, 3), "error": str(error)})
                await asyncio.sleep(delay)

    async def handle(self, record: SourceRecord) -> str:
        """Account for `record`: its outcome (`applied`, `skipped` or `dead_lettered`)."""
        raise NotImplementedError

    def done(self, outcome: str, reason: str | None = None) -> str:
        self.counters.consumed += 1
        setattr(self.counters, outcome, getattr(self.counters, outcome) + 1)
        self._metrics.record(self.name, outcome, reason)
        return outcome

    async def dead_letter(self, record: SourceRecord, error: BaseException,
                          stream_id: str | None) -> str:
        await self.retrying("dead letter",
                            lambda: self._dead_letters.send(record, error))
        logger.warning("dead-lettered", extra={
            "stage": self.name, "stream_id": stream_id, "topic": record.topic,
            "partition": record.partition, "offset": record.offset,
            "error": f"{type(error).__name__}: {str(error)[:300]}"})
        return self.done("dead_lettered")


class RouterStage(Stage):
    """Stage one: events → facts on the customer's partition of the facts topic."""

    def __init__(self, orders: KeyValue, forward: Callable[[Fact, int], Awaitable[None]],
                 dead_letters: DeadLetters, partitions: Callable[[], Awaitable[int]],
                 metrics: ManagerMetrics, backoff: Backoff | None = None) -> None:
        super().__init__(ROUTER, dead_letters, partitions, metrics, backoff)
        self._orders = orders
        self._forward = forward

    async def handle(self, record: SourceRecord) -> str:
        partitions = await self.partitions()
        found = classify(record, partitions)
        if isinstance(found, Poison):
            return await self.dead_letter(record, found.error, found.stream_id)
        if isinstance(found, Skip):
            return self.done("skipped", found.reason)
        remembered = self._orders.get(found.stream_id.encode())
        routed = route(found, None if remembered is None else remembered.decode())
        if not isinstance(routed, Forward):
            return self.done("skipped", routed.reason)
        if routed.remember is not None:
            order, customer = routed.remember
            self._orders[order.encode()] = customer.encode()
        fact = routed.fact
        await self.retrying("forward fact",
                            lambda: self._forward(fact, partition_for(fact.customer, partitions)))
        return self.done("applied")


class ManagerStage(Stage):
    """Stage two, one per manager: facts → the customer's state in `table`, and commands."""

    def __init__(self, name: str, table: KeyValue,
                 send: Callable[[OutgoingCommand], Awaitable[None]],
                 dead_letters: DeadLetters, partitions: Callable[[], Awaitable[int]],
                 metrics: ManagerMetrics, backoff: Backoff | None = None) -> None:
        super().__init__(name, dead_letters, partitions, metrics, backoff)
        self._table = table
        self._send = send

    async def handle(self, record: SourceRecord) -> str:
        partitions = await self.partitions()
        try:
            fact = decode_fact(record.value)
            if record.partition != partition_for(fact.customer, partitions):
                raise WrongPartition(f"{fact.customer} belongs on partition "
                                     f"{partition_for(fact.customer, partitions)}")
            key = fact.customer.encode()
            state = decode_state(self._table.get(key))
        except Exception as error:  # a record's content: never stops the manager
            return await self.dead_letter(record, error, None)
        try:
            decision = decide(self.name, state, fact)
            if not decision.new:
                return self.done("skipped", "fact already applied")
            outgoing_commands = [cancel_order(cancel, fact, partitions)
                                 for cancel in decision.cancels]
        except Exception as error:  # a command that cannot be built (an order id a new
            # command may not carry, a correlation id it refuses): the fact is dead-lettered,
            # no order is marked, nothing is sent
            return await self.dead_letter(record, error, fact.customer)
        for cancel, outgoing in zip(decision.cancels, outgoing_commands, strict=True):
            await self.retrying("send command", lambda: self._send(outgoing))  # noqa: B023
            self.counters.commands += 1
            self._metrics.command(self.name, cancel.reason)
            logger.info("cancel sent", extra={
                "manager": self.name, "stream_id": cancel.order,
                "command_id": cancel.command_id, "reason": cancel.reason,
                "cause": cancel.cause, "correlation_id": fact.correlation_id})
        self._table[key] = encode_state(decision.state)
        return self.done("applied")
