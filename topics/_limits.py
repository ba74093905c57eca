"""Limits derived from the stores: every bound on ids, text, money and counts, in one place.

Whatever the command boundary accepts, every place a value, or a key derived from it, goes can
hold it: the envelopes' own fields, Kafka keys and headers, PostgreSQL columns and indexes,
Elasticsearch document ids and keyword terms. The asserts below are the proof, run at import;
`tests/unit/test_limits.py` checks the migrations and the index mapping against the same numbers,
and docs/limits.md tabulates them. The envelopes and the message value types (`topics._envelopes`,
`topics._values`) are built from these constants, so the JSON Schemas say the same.

Two bounds exist for aggregate ids: `MAX_AGGREGATE_ID_LENGTH` for new commands, and the looser
`READ_MAX_AGGREGATE_ID_LENGTH` for stream ids already on the log (earlier releases accepted up to
128 characters), which the read side still decodes since they fit every store.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic_core import PydanticCustomError

# -- What the stores and consumers can hold ------------------------------------------------------

PG_BIGINT_MAX: Final = 2**63 - 1
"""PostgreSQL `bigint` (versions, totals, offsets)."""
PG_BTREE_MAX_BYTES: Final = 2704
"""PostgreSQL 15, 8 kB pages: the largest btree index entry ("index row size exceeds maximum")."""
ES_MAX_ID_BYTES: Final = 512
"""Elasticsearch: a document `_id` is at most 512 bytes of UTF-8."""
ES_MAX_TERM_BYTES: Final = 32766
"""Lucene: one indexed term (a keyword value) is at most 32,766 bytes of UTF-8."""
JSON_MAX_SAFE_INTEGER: Final = 2**53 - 1
"""The largest integer below which every integer is exact as an IEEE double (JavaScript, jq)."""
UTF8_MAX_BYTES_PER_CHARACTER: Final = 4

# -- Message sizes ------------------------------------------------------------------------------

MAX_COMMAND_BYTES: Final = 64 * 1024
"""Largest command accepted at decode; bigger ones are rejected as `TooLarge`."""
MAX_RECORD_BYTES: Final = 1024 * 1024
"""Largest event, result or snapshot accepted at decode (Kafka's default `max.message.bytes`)."""
KAFKA_MAX_MESSAGE_BYTES: Final = 1024 * 1024 + 12
"""Kafka's default `max.message.bytes` (1,048,588): the largest record batch a topic of the
project takes, stated on every topic the catalogue creates, and the record size every producer
and dead letter of the project is bounded by."""
RECENT_COMMANDS_WINDOW: Final = 100
"""How many recent command ids a snapshot keeps per stream for duplicate detection."""

# -- Names, ids, versions -----------------------------------------------------------------------

MAX_MESSAGE_ID_LENGTH: Final = 128
MESSAGE_ID_PATTERN: Final = rf"^[\x21-\x7e]{{1,{MAX_MESSAGE_ID_LENGTH}}}$"
"""Command, event, causation and correlation ids: printable ASCII without spaces."""
MAX_TYPE_NAME_LENGTH: Final = 64
TYPE_NAME_PATTERN: Final = rf"^[A-Z][A-Za-z0-9]{{0,{MAX_TYPE_NAME_LENGTH - 1}}}$"
MAX_AGGREGATE_TYPE_LENGTH: Final = 32
AGGREGATE_TYPE_PATTERN: Final = rf"^[a-z][a-z0-9_]{{0,{MAX_AGGREGATE_TYPE_LENGTH - 1}}}$"

MAX_VERSION: Final = PG_BIGINT_MAX
"""A stream's version: a `bigint` column in PostgreSQL, a `long` version in Elasticsearch."""
MAX_VERSION_DIGITS: Final = len(str(MAX_VERSION))

ID_CHARACTERS: Final = "A-Za-z0-9_.:-"
"""The characters of aggregate ids (and skus): ASCII, so a character is a byte. Never `@` (an
event key splits at its last `@`); `-` is fine (a stream id splits at its first, and aggregate
types have none)."""
MAX_AGGREGATE_ID_LENGTH: Final = 64
"""New commands (and references to another aggregate, such as an order's `customer_id`)."""
AGGREGATE_ID_PATTERN: Final = rf"^[{ID_CHARACTERS}]{{1,{MAX_AGGREGATE_ID_LENGTH}}}$"
READ_MAX_AGGREGATE_ID_LENGTH: Final = 128
"""Stream ids already on the log: what releases before these limits accepted."""
READ_AGGREGATE_ID_PATTERN: Final = rf"^[{ID_CHARACTERS}]{{1,{READ_MAX_AGGREGATE_ID_LENGTH}}}$"

MAX_STREAM_ID_LENGTH: Final = MAX_AGGREGATE_TYPE_LENGTH + 1 + MAX_AGGREGATE_ID_LENGTH
"""`<type>-<id>`: command, snapshot and result key, PostgreSQL parked/blocked `stream_id`."""
MAX_EVENT_ID_LENGTH: Final = MAX_STREAM_ID_LENGTH + 1 + MAX_VERSION_DIGITS
"""`<stream_id>@<version>`: event id and event record key, at any version."""
READ_MAX_STREAM_ID_LENGTH: Final = MAX_AGGREGATE_TYPE_LENGTH + 1 + READ_MAX_AGGREGATE_ID_LENGTH

assert MAX_EVENT_ID_LENGTH <= MAX_MESSAGE_ID_LENGTH, "an event id must fit MessageId"
assert MAX_AGGREGATE_ID_LENGTH <= READ_MAX_AGGREGATE_ID_LENGTH
# Ids are ASCII: characters are bytes. Aggregate ids are Elasticsearch `_id`s and keyword terms
# (`user_id`), PostgreSQL primary keys; stream ids are PostgreSQL primary-key parts.
assert READ_MAX_AGGREGATE_ID_LENGTH <= ES_MAX_ID_BYTES
assert READ_MAX_STREAM_ID_LENGTH <= ES_MAX_ID_BYTES
assert READ_MAX_STREAM_ID_LENGTH <= ES_MAX_TERM_BYTES
assert READ_MAX_STREAM_ID_LENGTH <= PG_BTREE_MAX_BYTES

# -- Text ---------------------------------------------------------------------------------------

MAX_NAME_LENGTH: Final = 200
"""A person's name: PostgreSQL `users.name`; Elasticsearch `name` and `name.raw` (keyword)."""
MAX_EMAIL_LENGTH: Final = 254
"""RFC 5321's path limit; ASCII only (the address pattern allows nothing else)."""
MAX_TEXT_LENGTH: Final = 500
"""Free text in commands: reasons, payment references, tracking numbers (PostgreSQL `text`)."""
MAX_ENVELOPE_TEXT_LENGTH: Final = 1000
"""A command's `issued_by` and a result's `reason`."""
MAX_SKU_LENGTH: Final = 64
SKU_PATTERN: Final = rf"^[{ID_CHARACTERS}]{{1,{MAX_SKU_LENGTH}}}$"
CURRENCY_PATTERN: Final = r"^[A-Z]{3}$"

assert MAX_NAME_LENGTH * UTF8_MAX_BYTES_PER_CHARACTER <= ES_MAX_TERM_BYTES
assert MAX_EMAIL_LENGTH <= ES_MAX_TERM_BYTES

CONTROL_CHARACTERS: Final = r"\x00-\x1f\x7f-\x9f\ud800-\udfff"
"""Unicode categories Cc (C0, DEL, C1) and Cs (surrogates), as a character-class range.

PostgreSQL `text` cannot hold U+0000 and `jsonb` refuses `\\u0000`; a lone surrogate cannot be
encoded as UTF-8 at all; the others are invisible and break logs and terminals. Both categories
are closed by Unicode's stability policy, so the class is exact (tested against `unicodedata`).
"""
NO_CONTROL_CHARACTERS_PATTERN: Final = r"^[^\u0000-\u001f\u007f-\u009f]*$"
"""The JSON Schema form (ECMA-262 regex). Surrogates are left out: in a UTF-16 regex engine they
would also match the halves of every character beyond U+FFFF. No valid UTF-8 JSON carries a lone
surrogate except as a `\\ud800` escape, which the processor's JSON parser refuses."""
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")


UNSTORABLE_CHARACTERS: Final = r"\x00\ud800-\udfff"
"""What no store can hold at all: U+0000 (PostgreSQL `text` and `jsonb`) and lone surrogates
(not encodable as UTF-8). Events are checked for these only: an event already on the log was
accepted under the rules of its day, and stays readable while every store can hold it."""
MAX_STORED_TEXT_BYTES: Final = ES_MAX_TERM_BYTES
"""Longest text an event may carry, in UTF-8 bytes: every text field may be a keyword term."""
_UNSTORABLE = re.compile(f"[{UNSTORABLE_CHARACTERS}]")


def reject_unstorable(value: str) -> str:
    """`value` unchanged, or an `unstorable_text` error: U+0000, a lone surrogate, or more than
    `MAX_STORED_TEXT_BYTES` of UTF-8 (an event written by something other than the processor)."""
    found = _UNSTORABLE.search(value)
    if found is not None:
        raise PydanticCustomError(
            "unstorable_text",
            "contains U+{code} at position {position}, which no read model can store",
            {"code": f"{ord(found.group()):04X}", "position": found.start()},
        )
    if len(value) * UTF8_MAX_BYTES_PER_CHARACTER > MAX_STORED_TEXT_BYTES and (
        len(value.encode("utf-8")) > MAX_STORED_TEXT_BYTES
    ):
        raise PydanticCustomError(
            "unstorable_text",
            "longer than {limit} bytes of UTF-8",
            {"limit": MAX_STORED_TEXT_BYTES},
        )
    return value


def reject_control_characters(value: str) -> str:
    """`value` unchanged, or a `control_character` validation error naming the first one."""
    found = _CONTROL.search(value)
    if found is None:
        return value
    raise PydanticCustomError(
        "control_character",
        "contains the control character U+{code} at position {position}",
        {"code": f"{ord(found.group()):04X}", "position": found.start()},
    )


# -- Money and counts ---------------------------------------------------------------------------

MAX_ITEMS: Final = 100
MAX_QUANTITY: Final = 1_000_000
MAX_UNIT_PRICE: Final = 10**12
"""Minor units (cents) of one item."""
MAX_ORDER_TOTAL: Final = JSON_MAX_SAFE_INTEGER
"""Minor units of one order (9,007,199,254,740,991): fits PostgreSQL's `bigint` with room, and
stays exact for every JSON consumer that reads numbers as doubles. Items alone could reach
`MAX_ITEMS * MAX_QUANTITY * MAX_UNIT_PRICE` (10^20, beyond `bigint`), so the total is checked."""

assert MAX_ORDER_TOTAL <= PG_BIGINT_MAX
assert MAX_UNIT_PRICE <= MAX_ORDER_TOTAL, "one item at the highest price must be orderable"
