"""What became of one command record: its `RecordOutcome`, its output records, its state change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pipeline.processor.records import InboundRecord, OutboundRecord
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

    def log_fields(self, record: InboundRecord, events_topic: str) -> dict[str, Any]:
        """The fields of the record's DEBUG line (`loop`): ids, position, code, event ids."""
        event_outputs = [output for output in self.outputs if output.topic == events_topic]
        return {
            "stream_id": self.stream_id,
            "command_id": self.command_id,
            "correlation_id": _correlation_id(record, event_outputs),
            "partition": record.partition,
            "offset": record.offset,
            "code": self.code,
            "event_ids": [output.key.decode() for output in event_outputs if output.key] or None,
        }


def _correlation_id(record: InboundRecord, events: list[OutboundRecord]) -> str | None:
    """The correlation id the record's events carry, else the command's header."""
    for name, value in [*(events[0].headers if events else []), *record.headers]:
        if name == "correlation_id" and value:
            return value.decode("utf-8", errors="replace")
    return None
