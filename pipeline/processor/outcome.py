"""What became of one command record: its `RecordOutcome`, its output records, its state change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.processor.records import OutboundRecord
from pipeline.processor.state import StreamState

RecordOutcome = Literal[
    "accepted", "rejected", "duplicate", "dead_lettered", "forwarded", "skipped"
]
"""`skipped`: the last resort of `caution`, a record whose pointer dead letter kept failing too;
nothing is written for it but its offset."""


@dataclass(frozen=True)
class Handled:
    """One record's outcome and the records to produce for it. `change` is the stream's state
    after it (accepted commands only), applied to the batch's overlay only once every output
    was built and fits, so a record that fails halfway leaves no trace."""

    outcome: RecordOutcome
    outputs: list[OutboundRecord]
    command_id: str | None = None
    stream_id: str | None = None
    code: str | None = None
    change: StreamState | None = None
