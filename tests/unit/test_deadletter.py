"""The dead-letter builder (`topics.deadletter`): any record's letter fits its budgets."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from topics import deadletter, read_headers

RECORD_BATCH_HEADER = 61
RECORD_FIELDS = 40
"""A record's own length, attributes, deltas, key and value lengths, header count (varints)."""


def letter(**fields: object) -> deadletter.DeadLetter:
    record: dict[str, object] = {
        "topic": "cqrs.commands", "partition": 0, "offset": 7, "key": b"k", "value": b"v",
        "error": ValueError("bad"),
    }
    return deadletter.dead_letter(**{**record, **fields})  # type: ignore[arg-type]


def test_many_empty_headers_are_not_free() -> None:
    # 270,000 empty headers: 0 bytes of names and values, 2.7 MB with their framing.
    empty = [("", b"")] * 270_000
    built = letter(headers=empty)
    copied = [header for header in built.headers if header[0] not in deadletter.OWN_HEADERS]
    assert len(copied) == deadletter.MAX_COPIED_HEADER_COUNT
    assert built.truncated == ("headers",)
    assert read_headers(built.headers)[deadletter.TRUNCATED] == "headers"
    assert built.size <= deadletter.DEAD_LETTER_RECORD_LIMIT


def test_size_counts_each_header_with_its_framing() -> None:
    built = deadletter.DeadLetter(b"kk", b"vvv", [("a", b""), ("bc", b"d")])
    assert built.size == 2 + 3 + (1 + deadletter.HEADER_FRAMING) + (3 + deadletter.HEADER_FRAMING)


def test_copied_header_bytes_include_framing() -> None:
    # Each costs 1 + 0 + 10 bytes: the byte budget holds fewer than the count cap allows.
    headers = [("h", b"")] * 200 + [("x", b"y" * deadletter.MAX_COPIED_HEADERS)]
    built = letter(headers=headers)
    copied = [header for header in built.headers if header[0] not in deadletter.OWN_HEADERS]
    assert len(copied) == 200  # the big one does not fit what is left
    assert sum(deadletter.header_size(n, v) for n, v in copied) <= deadletter.MAX_COPIED_HEADERS
    assert built.truncated == ("headers",)


def test_the_worst_record_fits_the_documented_bound() -> None:
    class LongNamedErrorClassForADeadLetterOfTheWorstKind(Exception):
        pass

    built = deadletter.dead_letter(
        topic="t" * 10_000,
        partition=2**63 - 1,
        offset=-(2**63),
        key=b"k" * 10 * deadletter.MAX_DEAD_LETTER_KEY,
        value=b"v" * deadletter.RECORD_LIMIT,
        headers=[(f"h{i}", b"x" * 100) for i in range(1000)] + [("\udcff", b"")] * 100,
        error=LongNamedErrorClassForADeadLetterOfTheWorstKind("\U0001f4a5" * 5000),
    )
    assert built.truncated == ("value", "key", "headers")
    assert built.size <= deadletter.DEAD_LETTER_RECORD_LIMIT
    framed = deadletter.DEAD_LETTER_RECORD_LIMIT + RECORD_FIELDS + RECORD_BATCH_HEADER
    assert framed < deadletter.RECORD_LIMIT
    for name, _ in built.headers:
        name.encode()  # every name is valid UTF-8 (a producer can write it)


@settings(max_examples=200, deadline=None)
@given(
    key=st.none() | st.binary(max_size=3000),
    value=st.none() | st.binary(max_size=600_000),
    headers=st.lists(st.tuples(st.text(max_size=50), st.binary(max_size=2000)), max_size=400),
    message=st.text(max_size=3000),
    pointer=st.booleans(),
)
def test_any_record_gives_a_letter_within_the_limit(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]], message: str,
    pointer: bool,
) -> None:
    built = letter(key=key, value=value, headers=headers, error=RuntimeError(message),
                   pointer=pointer)
    assert built.size <= deadletter.DEAD_LETTER_RECORD_LIMIT
    own = read_headers(built.headers)
    if value is not None:
        assert own[deadletter.ORIGINAL_VALUE_SHA256] == hashlib.sha256(value).hexdigest()
        assert own[deadletter.ORIGINAL_VALUE_BYTES] == str(len(value))


def test_a_pointer_copies_nothing_and_says_what_it_left_out() -> None:
    value = b'{"command_id": "c1"}'
    built = letter(key=b"user-u1", value=value, headers=[("trace", b"t1")], pointer=True)
    assert (built.key, built.value) == (b"user-u1", None)
    own = read_headers(built.headers)
    assert "trace" not in own
    assert own[deadletter.TRUNCATED] == "value,headers"
    assert own[deadletter.ORIGINAL_VALUE_BYTES] == str(len(value))
    assert own[deadletter.ORIGINAL_VALUE_SHA256] == hashlib.sha256(value).hexdigest()
    assert own[deadletter.SOURCE_OFFSET] == "7"
    # A tombstone without headers leaves nothing out: a copy would be the same record.
    tombstone = letter(value=None, pointer=True)
    assert deadletter.TRUNCATED not in read_headers(tombstone.headers)
