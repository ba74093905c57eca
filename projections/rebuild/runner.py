"""Reading the events topic into a store through the live projector's `BatchProcessor`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from projections.rebuild.source import EventSource
from projections.runtime.processor import BatchProcessor
from projections.runtime.records import SourceRecord

logger = logging.getLogger("projections.rebuild")

READ_SIZE = 2000
READ_TIMEOUT = 0.5


class Progress(Protocol):
    """Told after every batch: records read so far, and how many the current target needs."""

    def update(self, done: int, total: int) -> None: ...


class NoProgress:
    def update(self, done: int, total: int) -> None:
        return None


@dataclass
class KeptDeadLetters:
    """A rebuild's `DeadLetters`: poison is logged and kept for the report, not published.

    The live projector dead-lettered the same records when it met them; publishing them again
    would duplicate the DLQ. The new model still blocks and parks their streams, as the live one.
    """

    records: list[tuple[SourceRecord, str]] = field(default_factory=list)

    async def send(self, record: SourceRecord, error: BaseException) -> None:
        self.records.append((record, f"{type(error).__name__}: {error}"))


@dataclass
class Reader:
    """Applies `source` from `positions` (partition → next offset) through `processor`."""

    source: EventSource
    processor: BatchProcessor
    positions: dict[int, int]
    progress: Progress = field(default_factory=NoProgress)
    read: int = 0
    _first: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._first = dict(self.positions)

    def lag(self, targets: Mapping[int, int]) -> int:
        return sum(max(0, end - self.positions.get(p, 0)) for p, end in targets.items())

    async def catch_up(self, targets: Mapping[int, int], *, trim: bool = False) -> None:
        """Read until every partition's position reaches `targets[p]`. With `trim`, records at
        or past their target are dropped (a point-in-time build reads once, never further)."""
        total = self.read + self.lag(targets)
        pending: asyncio.Task[tuple[list[SourceRecord], dict[int, int]]] | None = None
        while self.lag(targets) > 0:
            if pending is None:
                pending = asyncio.create_task(self._next())
            records, ends = await pending
            # Read the next batch while this one is written (one read in flight at a time).
            pending = asyncio.create_task(self._next()) if self.lag(targets) > 0 else None
            if trim:
                records = [r for r in records if r.offset < targets.get(r.partition, 0)]
            if records:
                await self.processor.process(records)
            self._advance(records, ends, targets if trim else None)
            self.progress.update(self.read, max(total, self.read + self.lag(targets)))
        if pending is not None:
            await self._settle(pending, targets if trim else None)

    async def _settle(self, pending: asyncio.Task[tuple[list[SourceRecord], dict[int, int]]],
                      bound: Mapping[int, int] | None) -> None:
        # A read started before the target was reached: apply it, rather than lose it.
        records, ends = await pending
        if bound is not None:
            records = [r for r in records if r.offset < bound.get(r.partition, 0)]
        if records:
            await self.processor.process(records)
        self._advance(records, ends, bound)

    async def _next(self) -> tuple[list[SourceRecord], dict[int, int]]:
        return await asyncio.to_thread(self.source.read, READ_SIZE, READ_TIMEOUT)

    def _advance(self, records: list[SourceRecord], ends: Mapping[int, int],
                 bound: Mapping[int, int] | None) -> None:
        before = sum(self.positions.values())
        for record in records:
            self.positions[record.partition] = max(self.positions.get(record.partition, 0),
                                                   record.offset + 1)
        for partition, offset in ends.items():
            limit = bound.get(partition, offset) if bound is not None else offset
            self.positions[partition] = max(self.positions.get(partition, 0), min(offset, limit))
        self.read += sum(self.positions.values()) - before
