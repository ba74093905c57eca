"""Where a replay starts, as data: parsing `P:O,...` and ISO 8601, and the checkpoints to write.

A store checkpoint is the offset of the last record *accounted for*; the projector resumes at
checkpoint + 1. So "replay from offset O" writes checkpoint O - 1, and "from the beginning"
writes low watermark - 1 (the first record still in the log is read next).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from projections.operations.errors import InvalidPosition

Watermarks = Mapping[int, tuple[int, int]]


@dataclass(frozen=True)
class StartAt:
    """A replay's start: `kind` with its `offsets` (partition → first offset to read) or
    `millis` (epoch milliseconds); `partition` restricts it to one partition."""

    kind: Literal["beginning", "offsets", "timestamp"]
    offsets: Mapping[int, int] | None = None
    millis: int | None = None
    partition: int | None = None


def parse_offsets(text: str) -> dict[int, int]:
    """`"0:15,2:7"` → `{0: 15, 2: 7}`; raises `InvalidPosition`."""
    offsets: dict[int, int] = {}
    for part in (piece.strip() for piece in text.split(",")):
        partition, sep, offset = part.partition(":")
        if not sep or not partition.isdigit() or not offset.isdigit():
            raise InvalidPosition(f"{part!r} is not PARTITION:OFFSET (e.g. 0:15)")
        if int(partition) in offsets:
            raise InvalidPosition(f"partition {partition} given twice")
        offsets[int(partition)] = int(offset)
    return offsets


def parse_timestamp(text: str) -> int:
    """ISO 8601 → epoch milliseconds (UTC when no offset is given); raises `InvalidPosition`."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidPosition(f"{text!r} is not an ISO 8601 time: {error}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def selected(partitions: list[int], start: StartAt) -> list[int]:
    """The partitions a replay moves: all, or `start.partition`, or those `start.offsets` name."""
    if start.partition is not None:
        if start.partition not in partitions:
            raise InvalidPosition(f"no partition {start.partition} (has {partitions})")
        chosen = [start.partition]
    elif start.offsets is not None:
        chosen = sorted(start.offsets)
    else:
        chosen = list(partitions)
    unknown = sorted(set(chosen) - set(partitions))
    if unknown:
        raise InvalidPosition(f"no partition {unknown} (has {partitions})")
    return chosen


def checkpoints_for(next_offsets: Mapping[int, int], marks: Watermarks) -> dict[int, int]:
    """The store checkpoints that make the projector read `next_offsets` next: offset - 1,
    clamped into [low - 1, high - 1] (an offset past the end means: nothing to replay)."""
    checkpoints: dict[int, int] = {}
    for partition, offset in next_offsets.items():
        low, high = marks[partition]
        checkpoints[partition] = min(max(offset, low), high) - 1
    return checkpoints


def next_offsets_at_beginning(partitions: list[int], marks: Watermarks) -> dict[int, int]:
    return {partition: marks[partition][0] for partition in partitions}
