"""Dead letters: a bounded copy of any record, with headers naming its source and the error.

One builder for every dead-letter queue of the project (the processor's and each projector's),
so the header names are the same everywhere and a dead letter always fits its topic, whatever
the record was: the value, the key and the record's own headers are kept whole while they fit
their budgets and cut to a prefix otherwise. The original's size and sha256 travel in headers,
so an operator can tell a cut copy and find the original at its source position while the source
topic retains it.

Budgets (bytes): value `MAX_DEAD_LETTER_VALUE`, key `MAX_DEAD_LETTER_KEY`, copied headers
`MAX_COPIED_HEADERS`, error message `MAX_ERROR_MESSAGE`. Their sum stays far below
`DEAD_LETTER_RECORD_LIMIT`, the size every producer and DLQ topic of the project accepts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

RECORD_LIMIT: Final = 1024 * 1024 + 12
"""Kafka's default `max.message.bytes`: the largest record batch every topic of the catalogue
accepts, and the producers' `message.max.bytes` (set equal, so a record the broker would refuse
is refused by the client first, at `produce`, where it is one record's fault)."""
MAX_DEAD_LETTER_VALUE: Final = 512 * 1024
MAX_DEAD_LETTER_KEY: Final = 1024
MAX_COPIED_HEADERS: Final = 16 * 1024
MAX_ERROR_MESSAGE: Final = 1000
DEAD_LETTER_RECORD_LIMIT: Final = (
    MAX_DEAD_LETTER_VALUE + MAX_DEAD_LETTER_KEY + MAX_COPIED_HEADERS + 4 * 1024
)
"""Upper bound of a dead letter's key, value and headers together (with our own headers)."""

SOURCE_TOPIC: Final = "dlq.source.topic"
SOURCE_PARTITION: Final = "dlq.source.partition"
SOURCE_OFFSET: Final = "dlq.source.offset"
ERROR_CLASS: Final = "dlq.error.class"
ERROR_MESSAGE: Final = "dlq.error.message"
ORIGINAL_VALUE_BYTES: Final = "dlq.original.value.bytes"
ORIGINAL_VALUE_SHA256: Final = "dlq.original.value.sha256"
TRUNCATED: Final = "dlq.truncated"
"""Comma-separated parts that were cut: `value`, `key`, `headers` (absent when none was)."""

SOURCE_HEADERS: Final = (SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET)
OWN_HEADERS: Final = frozenset(
    {*SOURCE_HEADERS, ERROR_CLASS, ERROR_MESSAGE, ORIGINAL_VALUE_BYTES, ORIGINAL_VALUE_SHA256,
     TRUNCATED}
)
"""Every header name the builder writes; a record's own headers of these names are not copied,
so a record cannot pose as coming from somewhere else."""

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class DeadLetter:
    """The key, value and headers to produce to a DLQ topic; `truncated` names what was cut."""

    key: bytes | None
    value: bytes | None
    headers: Headers
    truncated: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Key, value and header bytes together (what counts against the record limit)."""
        return (
            len(self.key or b"")
            + len(self.value or b"")
            + sum(len(name.encode()) + len(value) for name, value in self.headers)
        )


def error_text(error: BaseException) -> str:
    """`str(error)` cut to `MAX_ERROR_MESSAGE` characters (the class travels separately)."""
    try:
        text = str(error)
    except Exception:  # a hostile __str__ must not stop a dead letter
        text = repr(type(error))
    return text[:MAX_ERROR_MESSAGE]


def _copied_headers(headers: list[tuple[str, bytes | None]]) -> tuple[Headers, bool]:
    kept: Headers = []
    used = 0
    cut = False
    for name, value in headers:
        name = name if isinstance(name, str) else str(name)
        if name in OWN_HEADERS:
            continue
        raw = value if isinstance(value, bytes) else (value or "").encode()
        size = len(name.encode("utf-8", errors="replace")) + len(raw)
        if used + size > MAX_COPIED_HEADERS:
            cut = True
            continue
        kept.append((name, raw))
        used += size
    return kept, cut


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]] | tuple[tuple[str, bytes], ...] = (),
    error: BaseException,
) -> DeadLetter:
    """The bounded copy of the record at `topic`/`partition`/`offset`, failed with `error`."""
    truncated: list[str] = []
    kept_value = value
    if value is not None and len(value) > MAX_DEAD_LETTER_VALUE:
        kept_value = value[:MAX_DEAD_LETTER_VALUE]
        truncated.append("value")
    kept_key = key
    if key is not None and len(key) > MAX_DEAD_LETTER_KEY:
        kept_key = key[:MAX_DEAD_LETTER_KEY]
        truncated.append("key")
    copied, cut = _copied_headers(list(headers))
    if cut:
        truncated.append("headers")
    own: Headers = [
        (SOURCE_TOPIC, topic.encode("utf-8", errors="replace")),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
        (ERROR_CLASS, type(error).__name__.encode("utf-8", errors="replace")),
        (ERROR_MESSAGE, error_text(error).encode("utf-8", errors="replace")),
    ]
    if value is not None:
        own.append((ORIGINAL_VALUE_BYTES, str(len(value)).encode()))
        own.append((ORIGINAL_VALUE_SHA256, hashlib.sha256(value).hexdigest().encode()))
    if truncated:
        own.append((TRUNCATED, ",".join(truncated).encode()))
    return DeadLetter(kept_key, kept_value, [*copied, *own], tuple(truncated))
