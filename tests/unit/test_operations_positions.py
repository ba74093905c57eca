"""Replay positions and DLQ records as data: parsing, checkpoint arithmetic, header decoding."""

from __future__ import annotations

import pytest

from projections.operations import InvalidPosition, StartAt, parse_offsets, parse_position
from projections.operations.dlq import DlqEntry, pretty
from projections.operations.positions import checkpoints_for, parse_timestamp, selected


def test_offsets_parse_per_partition() -> None:
    assert parse_offsets("0:15, 2:7") == {0: 15, 2: 7}


@pytest.mark.parametrize("text", ["0", "a:1", "0:-1", "1:2,1:3", ""])
def test_bad_offsets_are_refused(text: str) -> None:
    with pytest.raises(InvalidPosition):
        parse_offsets(text)


def test_timestamps_are_utc_unless_zoned() -> None:
    assert parse_timestamp("1970-01-01T00:00:01") == 1000
    assert parse_timestamp("1970-01-01T01:00:01+01:00") == 1000
    assert parse_timestamp("1970-01-01T00:00:01Z") == 1000
    with pytest.raises(InvalidPosition):
        parse_timestamp("yesterday")


def test_checkpoint_is_the_offset_before_the_next_one_to_read() -> None:
    marks = {0: (0, 10), 1: (5, 8), 2: (0, 0)}
    assert checkpoints_for({0: 4, 1: 0, 2: 3}, marks) == {0: 3, 1: 4, 2: -1}
    assert checkpoints_for({0: 99}, marks) == {0: 9}


def test_selected_partitions() -> None:
    assert selected([0, 1, 2], StartAt("beginning")) == [0, 1, 2]
    assert selected([0, 1, 2], StartAt("beginning", partition=1)) == [1]
    assert selected([0, 1, 2], StartAt("offsets", offsets={2: 1, 0: 3})) == [0, 2]
    with pytest.raises(InvalidPosition):
        selected([0, 1, 2], StartAt("offsets", offsets={5: 1}))
    with pytest.raises(InvalidPosition):
        selected([0, 1], StartAt("timestamp", millis=0, partition=3))


def test_dlq_positions() -> None:
    assert parse_position("2:17") == (2, 17)
    with pytest.raises(InvalidPosition):
        parse_position("17")


def test_dlq_entry_gives_back_the_original_record() -> None:
    headers = (("stream_id", b"user-a"), ("dlq.source.topic", b"p.events"),
               ("dlq.source.partition", b"1"), ("dlq.source.offset", b"9"),
               ("dlq.error.class", b"InvalidHistory"), ("dlq.error.message", b"no row"))
    entry = DlqEntry(0, 3, b"user-a@2", b'{"a": 1}', headers, ("p.events", 1, 9), "user-a")
    original = entry.original()
    assert (original.topic, original.partition, original.offset) == ("p.events", 1, 9)
    assert original.headers == (("stream_id", b"user-a"),)
    assert entry.error == "InvalidHistory: no row"
    assert entry.as_json()["value"] == {"a": 1}
    assert pretty(b"{oops") == "{oops"
