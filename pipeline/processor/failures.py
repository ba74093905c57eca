"""A record that could not be handled: its dead letter, its rejected result, its code.

Error tree of a record's own faults (each ends the record as dead-lettered, never the process)::

    Exception                  anything raised while building a record's outputs
    ├── DecodeError            not JSON, wrong envelope, too large  command.<ErrorClass>
    ├── UnreadableHeaders      headers the client cannot read       command.UnreadableHeaders
    │                          (a header name that is not UTF-8)
    ├── UnknownCommandType     no aggregate handles the type        command.unknown_type
    │                          (the client's, `pipeline.client.errors`: one class, one name)
    ├── StreamQuarantined      the stream's state is unreadable     processor.stream_quarantined
    ├── OutputTooLarge         an output would not fit a record     processor.output_too_large
    └── (any other)            a bug or a hostile value             processor.internal_error
"""

from __future__ import annotations

import logging
from datetime import datetime

from pipeline.client.errors import UnknownCommandType
from pipeline.processor import records
from pipeline.processor.config import TopicNames
from pipeline.processor.outcome import Handled
from pipeline.processor.records import InboundRecord, OutboundRecord
from topics import DecodeError, deadletter, limits, peek_command_id

log = logging.getLogger(__name__)

class UnreadableHeaders(Exception):
    """The record's headers could not be read (confluent-kafka raises on a header name that is
    not UTF-8): the record is dead-lettered without them."""


class StreamQuarantined(Exception):
    """The command addresses a stream whose snapshot and events could not be read at restore."""


class OutputTooLarge(Exception):
    """An output of the record would exceed the record limit (`records.MAX_OUTPUT_BYTES`)."""


class UnwritableRecord(Exception):
    """The error class of a pointer dead letter: the record's own transaction kept failing."""


UNWRITABLE = "the producer kept refusing this record's own transaction (see the processor log)"

_CODES: dict[type[BaseException], str] = {
    UnreadableHeaders: "command.UnreadableHeaders",
    UnknownCommandType: "command.unknown_type",
    StreamQuarantined: "processor.stream_quarantined",
    OutputTooLarge: "processor.output_too_large",
}


def code_for(error: BaseException) -> str:
    """The rejected result's code for a record that failed with `error`."""
    if isinstance(error, DecodeError):
        return f"command.{type(error).__name__}"
    return _CODES.get(type(error), "processor.internal_error")


def reason_for(error: BaseException) -> str:
    """A readable reason: the message of an expected error, the class too for anything else."""
    text = deadletter.error_text(error)
    if code_for(error) == "processor.internal_error":
        text = f"{type(error).__name__}: {text}"
    return text[: limits.MAX_ENVELOPE_TEXT_LENGTH]  # `CommandResult.reason`'s bound


def check_fits(outputs: list[OutboundRecord]) -> None:
    """Raise `OutputTooLarge` if one of `outputs` would not fit a record. The exact size is
    counted only for an output whose `records.size_bound` exceeds the limit."""
    limit = records.MAX_OUTPUT_BYTES
    for output in outputs:
        if records.size_bound(output) <= limit:
            continue
        size = records.size_of(output)
        if size > limit:
            raise OutputTooLarge(
                f"a record for {output.topic} would be {size} bytes, "
                f"the limit is {records.MAX_OUTPUT_BYTES}"
            )


def failed(
    record: InboundRecord, topics: TopicNames, now: datetime, error: BaseException
) -> Handled:
    """The record as a dead letter, plus a rejected result when its command id can be read."""
    code = code_for(error)
    if code == "processor.internal_error":
        log.error(
            "record failed",
            exc_info=error,
            extra={"partition": record.partition, "offset": record.offset, "code": code},
        )
    try:
        command_id = peek_command_id(record.value or b"")
        outputs = [records.dead_letter(record, topics, error)]
        if command_id is not None:
            reply = records.answer(
                record, topics, now, command_id, None, "rejected",
                code=code, reason=reason_for(error),
            )
            if records.size_of(reply) <= records.MAX_OUTPUT_BYTES:
                outputs.append(reply)
        check_fits(outputs)
    except Exception:  # the last resort must not fail on a hostile record either
        log.exception("dead letter copy failed", extra={"offset": record.offset})
        return pointer(record, topics, error)
    return Handled("dead_lettered", outputs, command_id, None, code)


def pointer(record: InboundRecord, topics: TopicNames, error: BaseException) -> Handled:
    """The record as a pointer dead letter (no value, no copied headers, no result)."""
    return Handled(
        "dead_lettered",
        [records.dead_letter(record, topics, error, pointer=True)],
        code=code_for(error),
    )
