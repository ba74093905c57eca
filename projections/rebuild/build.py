"""One rebuild: fill a new model from the events topic, follow the live end, swap it in.

Contract: the new model is filled by the live projector's own `BatchProcessor` and store class,
so the same events give the same rows. A live rebuild reads up to the end offsets measured at its
start, then again up to the new end until a round starts less than `SWAP_LAG` records behind, and
then swaps (the target's `swap` catches up with the live checkpoints under its lock first). A
point-in-time build (`Bounds.until_*`) reads exactly up to its bound, once, and is never swapped.
The old model is kept (retired) unless `keep` is false.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from projections.rebuild.positions import Bounds
from projections.rebuild.runner import KeptDeadLetters, NoProgress, Progress, Reader
from projections.rebuild.source import EventSource
from projections.rebuild.target import Target
from projections.runtime.processor import BatchProcessor

logger = logging.getLogger("projections.rebuild")

SWAP_LAG = 2000
"""Swap once a catch-up round starts less than this many records behind the live end."""
MAX_ROUNDS = 50


@dataclass
class RebuildReport:
    """What a rebuild did: the model built, what it replaced, and how fast."""

    model: str
    swapped: bool
    retired: str | None
    dropped: bool
    events: int
    seconds: float
    counters: dict[str, int]
    dead_lettered: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def rebuild(target: Target, source: EventSource, projector: str, bounds: Bounds,
                  progress: Progress | None = None, *, keep: bool = True) -> RebuildReport:
    """Build `projector`'s model into a new side model of `target`; see the module contract."""
    started = time.monotonic()
    name = await target.create("pit" if bounds.point_in_time else "rebuild")
    logger.info("rebuild started projector=%s model=%s", projector, name)
    store = target.store(name)
    dead = KeptDeadLetters()
    # The live projector's classification, partition check included, so both agree on every record.
    processor = BatchProcessor(f"rebuild-{projector}", store, dead,
                               partitions=len(source.partitions))
    try:
        await processor.start()
        first = source.first_offsets()
        positions = {p: bounds.start.get(p, first[p]) for p in source.partitions}
        source.assign(positions)
        reader = Reader(source, processor, positions, progress or NoProgress())
        swapped, retired, dropped = False, None, False
        if bounds.point_in_time:
            await reader.catch_up(_until(source, bounds), trim=True)
        else:
            await _follow(reader, source)

            async def catch_up(targets: dict[int, int] | None) -> None:
                await reader.catch_up(source.end_offsets() if targets is None else targets)

            retired = await target.swap(name, source.topic, catch_up)
            swapped = True
            logger.info("rebuild swapped projector=%s live=%s retired=%s", projector, name,
                        retired)
            if not keep:
                await target.drop(retired)
                dropped = True
    finally:
        await store.close()
    return RebuildReport(name, swapped, retired, dropped, reader.read, time.monotonic() - started,
                   processor.counters.snapshot(),
                   [f"{r.topic}:{r.partition}:{r.offset} {why}" for r, why in dead.records])


async def _follow(reader: Reader, source: EventSource) -> None:
    for _ in range(MAX_ROUNDS):
        ends = source.end_offsets()
        behind = reader.lag(ends)
        await reader.catch_up(ends)
        if behind < SWAP_LAG:
            return
    logger.warning("rebuild still behind after %d rounds; swapping under the lock", MAX_ROUNDS)


def _until(source: EventSource, bounds: Bounds) -> dict[int, int]:
    """Partition → first offset left out, never past the end offset now."""
    ends = source.end_offsets()
    if bounds.until_time is not None:
        return source.offsets_after(bounds.until_time)
    wanted = bounds.until_offsets or {}
    return {p: min(ends[p], wanted[p] + 1) if p in wanted else ends[p] for p in ends}
