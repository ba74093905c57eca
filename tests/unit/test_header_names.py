"""A header name that is not UTF-8: read leniently by the fetch, dead-lettered by `classify`.

The fetch is built by hand (aiokafka's pure-Python builder writes the bytes a `str` subclass's
`encode` returns, as kcat or a Java client could) and read as aiokafka's fetcher reads it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from aiokafka.consumer import fetcher as aiokafka_fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record import default_records
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from projections.runtime import Poison, SourceRecord, classify
from projections.runtime.errors import UnreadableHeaders
from projections.runtime.lenient import (
    KeptMemoryRecords,
    LenientPartitionRecords,
    lenient_batch,
    read_header_names_leniently,
)
from projections.search.tracking import record_of, record_operations
from tests.support.events import as_records, user_created
from topics import deadletter

BAD_NAME = b"\xff\xfename"
READ_NAME = BAD_NAME.decode("utf-8", "surrogateescape")
TP = TopicPartition("events", 0)
READ_COMMITTED = 1
GZIP = 1


class NotUtf8(str):
    def encode(self, *args: Any, **kwargs: Any) -> bytes:
        return BAD_NAME


def batch(base_offset: int, headers: list[list[tuple[str, bytes]]], compression: int = 0) -> bytes:
    builder = default_records._DefaultRecordBatchBuilderPy(
        magic=2, compression_type=compression, is_transactional=0, producer_id=-1,
        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for delta, record_headers in enumerate(headers):
        offset = base_offset + delta
        builder.append(delta, timestamp=None, key=f"k{offset}".encode(),
                       value=f"v{offset}".encode(), headers=record_headers)
    built = bytearray(builder.build())
    built[0:8] = base_offset.to_bytes(8, "big", signed=True)  # outside the CRC
    return bytes(built)


FIRST = batch(10, [[], [("ok", b"1")]])
FETCH = (FIRST
         + batch(12, [[("type", b"t")], [(NotUtf8("x"), b"v"), ("ok", b"2")], []], GZIP)
         + batch(15, [[]]))


def read(records: Any, fetch_offset: int = 10) -> tuple[list[Any], int]:
    partition = LenientPartitionRecords(TP, records, None, fetch_offset, None, None, True,
                                        READ_COMMITTED)
    return list(partition), partition.next_fetch_offset


def test_aiokafka_alone_loses_the_fetch_at_that_batch() -> None:
    partition = aiokafka_fetcher.PartitionRecords(TP, MemoryRecords(FETCH), None, 10, None,
                                                  None, True, READ_COMMITTED)
    with pytest.raises((UnicodeDecodeError, CorruptRecordException)):
        list(partition)


def test_the_batch_is_read_again_and_no_record_of_the_fetch_is_lost_or_reordered() -> None:
    found, next_offset = read(KeptMemoryRecords(FETCH))
    assert [(r.offset, r.key) for r in found] == [(o, f"k{o}".encode()) for o in range(10, 16)]
    assert [r.headers for r in found] == [
        (), (("ok", b"1"),), (("type", b"t"),), ((READ_NAME, b"v"), ("ok", b"2")), (), ()]
    assert next_offset == 16


def test_a_fetch_starting_inside_the_batch_skips_what_is_below_it() -> None:
    found, _ = read(KeptMemoryRecords(FETCH[len(FIRST):]), fetch_offset=13)
    assert [r.offset for r in found] == [13, 14, 15]


def test_other_batches_keep_the_installed_reader() -> None:
    records = KeptMemoryRecords(FETCH)
    assert isinstance(records, MemoryRecords)
    assert type(records.next_batch()) is default_records.DefaultRecordBatch


def test_only_a_header_name_decode_error_is_read_again() -> None:
    records = KeptMemoryRecords(FETCH)
    records.next_batch()
    bad = records.next_batch()
    decode_error = UnicodeDecodeError("utf-8", BAD_NAME, 0, 1, "invalid start byte")
    pure_python = CorruptRecordException("Found invalid record structure")
    pure_python.__cause__ = decode_error
    again = lenient_batch(records, bad, decode_error)
    assert isinstance(again, default_records._DefaultRecordBatchPy)
    assert lenient_batch(records, bad, pure_python) is not None
    assert lenient_batch(records, bad, CorruptRecordException("Invalid CRC")) is None
    assert lenient_batch(MemoryRecords(FETCH), bad, decode_error) is None  # bytes not kept


def test_installing_replaces_the_fetchers_two_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiokafka_fetcher, "MemoryRecords", aiokafka_fetcher.MemoryRecords)
    monkeypatch.setattr(aiokafka_fetcher, "PartitionRecords", aiokafka_fetcher.PartitionRecords)
    read_header_names_leniently()
    read_header_names_leniently()
    assert aiokafka_fetcher.MemoryRecords is KeptMemoryRecords
    assert aiokafka_fetcher.PartitionRecords is LenientPartitionRecords


def unreadable(record: SourceRecord) -> SourceRecord:
    return replace(record, headers=(*record.headers, (READ_NAME, b"v")))


def test_classify_dead_letters_it_and_names_its_stream_by_key() -> None:
    [record] = as_records([user_created("u1")], partitions=3)
    found = classify(unreadable(record), 3)
    assert isinstance(found, Poison)
    assert isinstance(found.error, UnreadableHeaders)
    assert "\\xff\\xfename" in str(found.error)
    assert found.stream_id == "user-u1"
    tombstone = classify(replace(unreadable(record), value=None), 3)
    assert isinstance(tombstone, Poison)
    assert isinstance(tombstone.error, UnreadableHeaders)
    assert not isinstance(classify(replace(record, headers=(("naïve", b"v"),)), 3), Poison)


def test_its_dead_letter_and_kept_copy_can_be_written() -> None:
    [record] = as_records([user_created("u1")], partitions=3)
    record = unreadable(record)
    letter = deadletter.dead_letter(topic=record.topic, partition=record.partition,
                                    offset=record.offset, key=record.key, value=record.value,
                                    headers=record.headers, error=UnreadableHeaders("x"))
    for name, _ in letter.headers:
        name.encode("utf-8")
    assert ("??name", b"v") in letter.headers
    [_, document] = record_operations("blocked", [("user-u1", record)])
    json.dumps(document, ensure_ascii=False).encode("utf-8")  # as the Elasticsearch client does
    assert record_of(document) == record
