"""Dead letters: a bounded copy of any record, with headers naming its source and the error.

One builder for every dead-letter queue of the project (the processor's and each projector's),
so the header names are the same everywhere and a dead letter always fits its topic, whatever
the record was: the value, the key and the record's own headers are kept whole while they fit
their budgets and cut otherwise (the value and key to a prefix, the headers to those that fit).
The original's size and sha256 travel in headers, so an operator can tell a cut copy and find
the original at its source position while the source topic retains it. A *pointer* letter
(`dead_letter(..., pointer=True)`) copies neither the value nor the headers: it names them in
`dlq.truncated`, for a record whose copy cannot be written at all.

Budgets (bytes, each header counted with `HEADER_FRAMING`): value `MAX_DEAD_LETTER_VALUE`, key
`MAX_DEAD_LETTER_KEY`, copied headers `MAX_COPIED_HEADERS` and at most `MAX_COPIED_HEADER_COUNT`
of them, the builder's own headers at most `MAX_OWN_HEADERS` (error message cut to
`MAX_ERROR_MESSAGE` characters, topic and class names to `MAX_NAME_BYTES`). Their sum is
`DEAD_LETTER_RECORD_LIMIT`, about half of `RECORD_LIMIT`: `DeadLetter.size` never exceeds it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from topics._limits import KAFKA_MAX_MESSAGE_BYTES

RECORD_LIMIT: Final = KAFKA_MAX_MESSAGE_BYTES
"""Kafka's default `max.message.bytes`: the largest record batch every topic of the catalogue
accepts, and the producers' `message.max.bytes` (set equal, so a record the broker would refuse
is refused by the client first, at `produce`, where it is one record's fault)."""
HEADER_FRAMING: Final = 10
"""Upper bound of one header's length fields in a record (two varints, name and value length):
what an empty header costs, so many empty headers are not free."""
MAX_DEAD_LETTER_VALUE: Final = 512 * 1024
MAX_DEAD_LETTER_KEY: Final = 1024
MAX_COPIED_HEADERS: Final = 16 * 1024
"""Bytes of the record's own headers copied (names, values and `HEADER_FRAMING` each)."""
MAX_COPIED_HEADER_COUNT: Final = 256
MAX_ERROR_MESSAGE: Final = 1000
"""Characters of the error message (up to 4 UTF-8 bytes each)."""
MAX_NAME_BYTES: Final = 255
"""Bytes of the source topic's name and of the error class's name (Kafka topics: 249)."""
_MAX_NUMBER_BYTES: Final = 20
"""Digits of a partition, an offset or a size (an int64 with its sign)."""

SOURCE_TOPIC: Final = "dlq.source.topic"
SOURCE_PARTITION: Final = "dlq.source.partition"
SOURCE_OFFSET: Final = "dlq.source.offset"
ERROR_CLASS: Final = "dlq.error.class"
ERROR_MESSAGE: Final = "dlq.error.message"
ORIGINAL_VALUE_BYTES: Final = "dlq.original.value.bytes"
ORIGINAL_VALUE_SHA256: Final = "dlq.original.value.sha256"
TRUNCATED: Final = "dlq.truncated"
"""Comma-separated parts that were cut or left out: `value`, `key`, `headers` (absent when
none was)."""
RETRY_OF: Final = "dlq.retry.of"
"""On a command re-produced from the DLQ (`cqrs dlq retry`), not on a dead letter: the letter it
came from, `<dlq topic>:<partition>:<offset>`."""

SOURCE_HEADERS: Final = (SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET)
OWN_HEADERS: Final = frozenset(
    {*SOURCE_HEADERS, ERROR_CLASS, ERROR_MESSAGE, ORIGINAL_VALUE_BYTES, ORIGINAL_VALUE_SHA256,
     TRUNCATED}
)
"""Every header name the builder writes; a record's own headers of these names are not copied,
so a record cannot pose as coming from somewhere else."""

MAX_OWN_HEADERS: Final = (
    sum(len(name) + HEADER_FRAMING for name in OWN_HEADERS)
    + 2 * MAX_NAME_BYTES  # topic, error class
    + 4 * MAX_ERROR_MESSAGE  # UTF-8
    + 3 * _MAX_NUMBER_BYTES  # partition, offset, original size
    + 64  # sha256, hex
    + len("value,key,headers")
)
"""Upper bound of the builder's own headers, framing included."""
DEAD_LETTER_RECORD_LIMIT: Final = (
    MAX_DEAD_LETTER_VALUE + MAX_DEAD_LETTER_KEY + MAX_COPIED_HEADERS + MAX_OWN_HEADERS
)
"""Upper bound of `DeadLetter.size`: a dead letter's key, value and headers with their framing."""

Headers = list[tuple[str, bytes]]


def header_size(name: str, value: bytes | None) -> int:
    """The bytes one header takes in a record: name, value and their length fields."""
    return len(name.encode("utf-8", errors="replace")) + len(value or b"") + HEADER_FRAMING


@dataclass(frozen=True)
class DeadLetter:
    """The key, value and headers to produce to a DLQ topic; `truncated` names what was cut."""

    key: bytes | None
    value: bytes | None
    headers: Headers
    truncated: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Key, value and headers with their framing (what counts against the record limit;
        the record's own fields, under 40 bytes, and the batch header are left to the margin
        between `DEAD_LETTER_RECORD_LIMIT` and `RECORD_LIMIT`)."""
        return (
            len(self.key or b"")
            + len(self.value or b"")
            + sum(header_size(name, value) for name, value in self.headers)
        )


def error_text(error: BaseException) -> str:
    """`str(error)` cut to `MAX_ERROR_MESSAGE` characters (the class travels separately)."""
    try:
        text = str(error)
    except Exception:  # a hostile __str__ must not stop a dead letter
        text = repr(type(error))
    return text[:MAX_ERROR_MESSAGE]


def _text(value: str, limit: int) -> bytes:
    """`value` as UTF-8 (lone surrogates replaced), cut to `limit` bytes at a character end."""
    raw = value.encode("utf-8", errors="replace")
    if len(raw) <= limit:
        return raw
    return raw[:limit].decode("utf-8", errors="ignore").encode()


def _number(value: int) -> bytes:
    return str(value).encode()[:_MAX_NUMBER_BYTES]


def _copied_headers(
    headers: list[tuple[str, bytes | None]] | tuple[tuple[str, bytes], ...],
) -> tuple[Headers, bool]:
    """The record's own headers that fit the budgets (bytes and count), and whether any was
    left out. Names become valid UTF-8; the builder's own names are never copied."""
    kept: Headers = []
    used = 0
    cut = False
    for name, value in headers:
        text = name if isinstance(name, str) else str(name)
        if text in OWN_HEADERS:
            continue
        if len(kept) >= MAX_COPIED_HEADER_COUNT:
            cut = True
            break
        encoded = text.encode("utf-8", errors="replace")
        raw = value if isinstance(value, bytes) else (value or "").encode("utf-8", "replace")
        size = len(encoded) + len(raw) + HEADER_FRAMING
        if used + size > MAX_COPIED_HEADERS:
            cut = True
            continue
        kept.append((encoded.decode("utf-8"), raw))
        used += size
    return kept, cut


def _has_copyable(headers: list[tuple[str, bytes | None]] | tuple[tuple[str, bytes], ...]) -> bool:
    return any(
        (name if isinstance(name, str) else str(name)) not in OWN_HEADERS for name, _ in headers
    )


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]] | tuple[tuple[str, bytes], ...] = (),
    error: BaseException,
    pointer: bool = False,
) -> DeadLetter:
    """The bounded copy of the record at `topic`/`partition`/`offset`, failed with `error`.

    `pointer`: copy neither the value nor the headers (`dlq.truncated` names those left out);
    the key is kept within its budget, the value's size and sha256 travel as always."""
    truncated: list[str] = []
    kept_value = value
    if value is not None and (pointer or len(value) > MAX_DEAD_LETTER_VALUE):
        kept_value = None if pointer else value[:MAX_DEAD_LETTER_VALUE]
        truncated.append("value")
    kept_key = key
    if key is not None and len(key) > MAX_DEAD_LETTER_KEY:
        kept_key = key[:MAX_DEAD_LETTER_KEY]
        truncated.append("key")
    copied: Headers = []
    if pointer:
        cut = _has_copyable(headers)
    else:
        copied, cut = _copied_headers(headers)
    if cut:
        truncated.append("headers")
    own: Headers = [
        (SOURCE_TOPIC, _text(topic, MAX_NAME_BYTES)),
        (SOURCE_PARTITION, _number(partition)),
        (SOURCE_OFFSET, _number(offset)),
        (ERROR_CLASS, _text(type(error).__name__, MAX_NAME_BYTES)),
        (ERROR_MESSAGE, _text(error_text(error), 4 * MAX_ERROR_MESSAGE)),
    ]
    if value is not None:
        own.append((ORIGINAL_VALUE_BYTES, _number(len(value))))
        own.append((ORIGINAL_VALUE_SHA256, hashlib.sha256(value).hexdigest().encode()))
    if truncated:
        own.append((TRUNCATED, ",".join(truncated).encode()))
    return DeadLetter(kept_key, kept_value, [*copied, *own], tuple(truncated))
