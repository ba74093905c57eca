"""The rebuild's pure parts: positions, the reader over a fake source, and the build's flow
(side model, catch-up, swap, point in time) over a fake target."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from projections.postgres.fake import FakeStore
from projections.rebuild import Bounds, PositionError, parse_offsets, parse_until
from projections.rebuild.build import rebuild
from projections.rebuild.runner import KeptDeadLetters, Reader
from projections.rebuild.target import Model
from projections.runtime.processor import BatchProcessor
from projections.runtime.records import SourceRecord
from tests.support.events import as_records, user_created

TOPIC = "t.events"


def test_offset_lists_are_read_per_partition() -> None:
    assert parse_offsets("0:120, 2:7") == {0: 120, 2: 7}


@pytest.mark.parametrize("text", ["", "0", "0:1,0:2", "a:1", "0:-1"])
def test_bad_offset_lists_are_refused(text: str) -> None:
    with pytest.raises(PositionError):
        parse_offsets(text)


def test_until_takes_offsets_or_a_time_in_utc() -> None:
    assert parse_until("1:5") == {1: 5}
    assert parse_until("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_until("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with pytest.raises(PositionError):
        parse_until("yesterday")


@dataclass
class FakeSource:
    """`EventSource` over a list of records; reads `chunk` at a time, then reports the end."""

    records: list[SourceRecord]
    topic: str = TOPIC
    partitions: list[int] = field(default_factory=lambda: [0, 1, 2])
    chunk: int = 7
    _next: dict[int, int] = field(default_factory=dict)

    def end_offsets(self) -> dict[int, int]:
        return {p: 1 + max((r.offset for r in self.records if r.partition == p), default=-1)
                for p in self.partitions}

    def first_offsets(self) -> dict[int, int]:
        return dict.fromkeys(self.partitions, 0)

    def assign(self, start: dict[int, int]) -> None:
        self._next = {p: start.get(p, 0) for p in self.partitions}

    def read(self, size: int, timeout: float) -> tuple[list[SourceRecord], dict[int, int]]:
        pending = sorted((r for r in self.records if r.offset >= self._next[r.partition]),
                         key=lambda r: (r.partition, r.offset))[:min(size, self.chunk)]
        for record in pending:
            self._next[record.partition] = record.offset + 1
        ends = self.end_offsets()
        return pending, {p: o for p, o in ends.items() if self._next[p] >= o}


def history(count: int) -> list[SourceRecord]:
    return as_records([user_created(f"u{n}") for n in range(count)], TOPIC)


def test_the_reader_applies_everything_up_to_its_targets() -> None:
    source, store = FakeSource(history(40)), FakeStore()
    source.assign({})
    reader = Reader(source, BatchProcessor("t", store, KeptDeadLetters()),  # type: ignore[arg-type]
                    dict.fromkeys(source.partitions, 0))
    asyncio.run(reader.catch_up(source.end_offsets()))
    assert sorted(store.users) == sorted(f"u{n}" for n in range(40))
    assert reader.read == 40
    assert reader.lag(source.end_offsets()) == 0


def test_a_trimmed_read_stops_exactly_at_its_bound() -> None:
    source, store = FakeSource(history(40)), FakeStore()
    source.assign({})
    reader = Reader(source, BatchProcessor("t", store, KeptDeadLetters()),  # type: ignore[arg-type]
                    dict.fromkeys(source.partitions, 0))
    asyncio.run(reader.catch_up({0: 2, 1: 0, 2: 3}, trim=True))
    kept = {(p, o) for (_, p), o in store.checkpoint_rows.items()}
    assert kept == {(0, 1), (2, 2)}
    assert len(store.users) == 5


@dataclass
class FakeTarget:
    """`Target` over `FakeStore`s; the swap records what it was asked to catch up to."""

    live_checkpoints: dict[int, int] = field(default_factory=dict)
    stores: dict[str, FakeStore] = field(default_factory=dict)
    live: str = "public"
    dropped: list[str] = field(default_factory=list)
    swaps: list[tuple[str, str]] = field(default_factory=list)

    async def close(self) -> None:
        return None

    async def live_name(self) -> str:
        return self.live

    async def create(self, kind: str) -> str:
        name = f"{kind}_{len(self.stores) + 1}"
        self.stores[name] = FakeStore()
        return name

    def store(self, name: str) -> FakeStore:
        return self.stores[name]

    async def models(self) -> list[Model]:
        return [Model(name, name.split("_")[0], len(s.users)) for name, s in self.stores.items()]

    async def drop(self, name: str) -> None:
        self.dropped.append(name)

    async def checkpoints(self, name: str, topic: str) -> dict[int, int]:
        return await self.stores[name].checkpoints(topic)

    async def swap(self, name: str, topic: str,
                   catch_up: Callable[[dict[int, int] | None], Awaitable[None]]) -> str:
        await catch_up({p: o + 1 for p, o in self.live_checkpoints.items()})
        retired, self.live = f"retired_{name.split('_')[1]}", name
        self.swaps.append((name, retired))
        return retired


def test_a_live_rebuild_catches_up_swaps_and_may_drop_the_old_model() -> None:
    target, source = FakeTarget(), FakeSource(history(30))
    outcome = asyncio.run(rebuild(target, source, "postgres", Bounds(), keep=False))  # type: ignore[arg-type]
    assert (outcome.model, outcome.swapped, outcome.retired) == ("rebuild_1", True, "retired_1")
    assert outcome.events == 30
    assert target.dropped == ["retired_1"]
    assert len(target.stores["rebuild_1"].users) == 30


def test_a_point_in_time_build_is_never_swapped_in() -> None:
    target, source = FakeTarget(), FakeSource(history(30))
    bounds = Bounds(until_offsets={0: 1, 1: 0, 2: 0})
    outcome = asyncio.run(rebuild(target, source, "postgres", bounds))  # type: ignore[arg-type]
    assert (outcome.model, outcome.swapped) == ("pit_1", False)
    assert target.swaps == []
    assert len(target.stores["pit_1"].users) == 4
