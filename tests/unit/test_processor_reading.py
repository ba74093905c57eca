"""Reading to the end: the high watermark of the read's start, waited for, never chased."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import KafkaError

from pipeline.processor.reading import RestoreTimeout, read_on_to_end


@dataclass
class Message:
    """A record (`eof` False) or an end-of-partition event of partition 0."""

    at: int
    eof: bool = False

    def error(self) -> Any:
        return KafkaError(KafkaError._PARTITION_EOF) if self.eof else None

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self.at


@dataclass
class Position:
    offset: int


class BusyPartition:
    """A read_committed consumer of a partition that another processor keeps writing: one
    transaction always open (high watermark = last stable offset + `open_records`), and the
    writer `step` records further on at each poll."""

    def __init__(self, stable: int, open_records: int, step: int) -> None:
        self.stable, self.open_records, self.step = stable, open_records, step
        self.at = 0

    def get_watermark_offsets(self, tp: Any, timeout: float, cached: bool) -> tuple[int, int]:
        return 0, self.stable + self.open_records

    def position(self, tps: list[Any]) -> list[Position]:
        return [Position(self.at)]

    def poll(self, timeout: float) -> Message:
        self.stable += self.step
        if self.at < self.stable:
            self.at += 1
            return Message(self.at - 1)
        return Message(self.at, eof=True)


def test_a_partition_written_on_is_read_to_the_end_it_had_not_chased() -> None:
    busy = BusyPartition(stable=100, open_records=5, step=3)
    offsets = [message.offset() for _, message in
               read_on_to_end(busy, "a", [0], time.monotonic() + 5)]
    assert offsets[:105] == list(range(105))  # the transaction open at the start, waited for
    assert len(offsets) < 200


def test_a_transaction_open_at_the_start_that_stays_open_times_out() -> None:
    stuck = BusyPartition(stable=100, open_records=5, step=0)
    with pytest.raises(RestoreTimeout):
        for _ in read_on_to_end(stuck, "a", [0], time.monotonic() + 0.3):
            pass


def test_an_empty_partition_or_one_read_already_is_not_waited_for() -> None:
    empty = BusyPartition(stable=0, open_records=0, step=0)
    assert list(read_on_to_end(empty, "a", [0], time.monotonic() + 5)) == []
    done = BusyPartition(stable=10, open_records=0, step=0)
    done.at = 10
    assert list(read_on_to_end(done, "a", [0], time.monotonic() + 5)) == []
