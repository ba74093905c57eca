"""Whole fetches for the agent: one item per fetch, and the batch in flight a revocation waits for.

The consumer hands the agent what one fetch returned for the assigned partitions, as one item
(`Fetch`), instead of one Faust message per record. The agent applies a fetch as one batch, so the
per-record cost of the runtime is building a `SourceRecord`; flow and the consumer generation are
checked once per fetch, and the position to report to the group is the fetch's last offset per
partition once the store has committed it (the store's checkpoint stays the truth).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from projections.runtime.records import SourceRecord


class KafkaRecord(Protocol):
    """What a fetched record offers (aiokafka's `ConsumerRecord`)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]


@dataclass(frozen=True, slots=True)
class Fetch:
    """The records of one fetch, in offset order per partition, read under consumer generation
    `generation`; `last_offsets` is the last offset of each partition in it."""

    generation: int
    records: list[SourceRecord]
    last_offsets: dict[tuple[str, int], int]


def source_record(record: KafkaRecord) -> SourceRecord:
    """A fetched record as the runtime reads it (a header without a value reads as empty)."""
    raw = record.headers
    headers = tuple((name, b"" if value is None else value) for name, value in raw) if raw else ()
    return SourceRecord(record.topic, record.partition, record.offset, record.key, record.value,
                        headers)


def fetch_of(records: Mapping[Any, Sequence[KafkaRecord]], generation: int,
             active: Collection[Any] | None = None) -> Fetch | None:
    """The `Fetch` of a `{topic partition: records}` fetch, keeping only the partitions in `active`
    (all when `None`); `None` when nothing is left."""
    found: list[SourceRecord] = []
    last: dict[tuple[str, int], int] = {}
    for tp, batch in records.items():
        if not batch or (active is not None and tp not in active):
            continue
        found.extend(map(source_record, batch))
        last[(tp.topic, tp.partition)] = batch[-1].offset
    return Fetch(generation, found, last) if found else None


class InFlight:
    """Whether the agent is applying a batch; a revocation waits until it is not, so the store's
    checkpoints are final before the partitions are sought again."""

    def __init__(self) -> None:
        self._idle = asyncio.Event()
        self._idle.set()

    @contextmanager
    def batch(self) -> Iterator[None]:
        self._idle.clear()
        try:
            yield
        finally:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """`True` once no batch is in flight, `False` if one still is after `timeout` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
