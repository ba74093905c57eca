"""aiokafka's fetch reading, with header names that are not UTF-8 read instead of raised.

aiokafka 0.14.0's reader, the C extension when built, decodes every header NAME as UTF-8 and
raises `UnicodeDecodeError` out of `getmany` for a name that is not (kcat or a Java client can
write one), which would crash the projector's fetcher before `classify` sees the record and lose
the rest of the fetch. `LenientPartitionRecords._unpack_records` is aiokafka 0.14.0's with one
change: a batch whose reading raises that error is read again from the fetched bytes by the
pure-Python reader, header names decoded with `surrogateescape` (so `classify` can flag them);
the records of the batch already handed over are skipped by offset, as aiokafka skips any record
below its position, so nothing of the fetch is lost, repeated or reordered. Every other batch is
read by the C reader as before: the change costs a `try` around the batch's loop and, per fetched
partition, a Python `__init__` keeping the fetch's bytes (`KeptMemoryRecords`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from aiokafka.consumer import fetcher as aiokafka_fetcher  # type: ignore[import-untyped]
from aiokafka.errors import CorruptRecordException  # type: ignore[import-untyped]
from aiokafka.record import default_records  # type: ignore[import-untyped]
from aiokafka.record.memory_records import MemoryRecords  # type: ignore[import-untyped]
from aiokafka.record.util import decode_varint  # type: ignore[import-untyped]

_BATCH_HEAD = struct.Struct(">qi")
"""A record batch's base offset and length (the bytes after these 12)."""


def read_header_names_leniently() -> None:
    """Make aiokafka's fetcher read fetches through `KeptMemoryRecords` and
    `LenientPartitionRecords` (process-wide, idempotent; before the consumer starts)."""
    aiokafka_fetcher.MemoryRecords = KeptMemoryRecords
    aiokafka_fetcher.PartitionRecords = LenientPartitionRecords


class KeptMemoryRecords(MemoryRecords):  # type: ignore[misc]
    """aiokafka's `MemoryRecords` (its C reader when built), keeping the fetched bytes."""

    def __init__(self, buffer: bytes) -> None:
        super().__init__(buffer)
        self.buffer = buffer


class LenientBatch(default_records._DefaultRecordBatchPy):  # type: ignore[misc]
    """aiokafka 0.14.0's pure-Python v2 record batch, header names decoded with
    `surrogateescape` instead of strictly."""

    _buffer: bytearray
    _pos: int

    def _read_msg(self) -> Any:
        # aiokafka 0.14.0's _DefaultRecordBatchPy._read_msg; only the header name's decode differs.
        buffer = self._buffer
        pos = self._pos
        length, pos = decode_varint(buffer, pos)
        start_pos = pos
        _, pos = decode_varint(buffer, pos)  # attributes, unused
        ts_delta, pos = decode_varint(buffer, pos)
        if self.timestamp_type == self.LOG_APPEND_TIME:
            timestamp = self.max_timestamp
        else:
            timestamp = self.first_timestamp + ts_delta
        offset_delta, pos = decode_varint(buffer, pos)
        key_len, pos = decode_varint(buffer, pos)
        key = None
        if key_len >= 0:
            key, pos = bytes(buffer[pos:pos + key_len]), pos + key_len
        value_len, pos = decode_varint(buffer, pos)
        value = None
        if value_len >= 0:
            value, pos = bytes(buffer[pos:pos + value_len]), pos + value_len
        header_count, pos = decode_varint(buffer, pos)
        if header_count < 0:
            raise CorruptRecordException(f"Found invalid number of record headers {header_count}")
        headers: list[tuple[str, bytes | None]] = []
        for _ in range(header_count):
            name_len, pos = decode_varint(buffer, pos)
            if name_len < 0:
                raise CorruptRecordException(f"Invalid negative header key size {name_len}")
            name = buffer[pos:pos + name_len].decode("utf-8", "surrogateescape")
            pos += name_len
            header_len, pos = decode_varint(buffer, pos)
            header = None
            if header_len >= 0:
                header, pos = bytes(buffer[pos:pos + header_len]), pos + header_len
            headers.append((name, header))
        if pos - start_pos != length:
            raise CorruptRecordException(
                f"Invalid record size: expected to read {length} bytes in record payload, "
                f"but instead read {pos - start_pos}")
        self._pos = pos
        return default_records._DefaultRecordPy(
            self.base_offset + offset_delta, timestamp, self.timestamp_type, key, value, headers)


def lenient_batch(records: Any, batch: Any, error: Exception) -> LenientBatch | None:
    """`batch` of `records` (a fetch) read again by `LenientBatch`, if `error` (raised reading
    it) is a header name that is not UTF-8 (the C reader raises it as is, the pure-Python one
    as the cause of a `CorruptRecordException`); `None` otherwise."""
    if not (isinstance(error, UnicodeDecodeError)
            or isinstance(error.__cause__, UnicodeDecodeError)):
        return None
    buffer = getattr(records, "buffer", None)
    if buffer is None or batch.magic < 2:
        return None
    view = memoryview(buffer)
    pos = 0
    while pos + _BATCH_HEAD.size <= len(view):
        base_offset, length = _BATCH_HEAD.unpack_from(view, pos)
        end = pos + _BATCH_HEAD.size + length
        if base_offset == batch.base_offset:
            return LenientBatch(view[pos:end])
        pos = end
    return None


class LenientPartitionRecords(aiokafka_fetcher.PartitionRecords):  # type: ignore[misc]
    """aiokafka 0.14.0's `PartitionRecords`, re-reading a batch whose header names are not
    UTF-8 with `LenientBatch` (see the module docstring)."""

    def _unpack_records(self) -> Iterator[Any]:
        # aiokafka 0.14.0's PartitionRecords._unpack_records; only the try/except is added.
        tp = self._tp
        records = self._records
        while records.has_next():
            next_batch = records.next_batch()
            if self._check_crcs and not next_batch.validate_crc():
                raise CorruptRecordException(f"Invalid CRC - {tp}")
            if (self._isolation_level == aiokafka_fetcher.READ_COMMITTED
                    and next_batch.producer_id is not None):
                self._consume_aborted_up_to(next_batch.base_offset)
                if next_batch.is_control_batch and self._contains_abort_marker(next_batch):
                    self._aborted_producers.discard(next_batch.producer_id)
                if (next_batch.is_transactional
                        and next_batch.producer_id in self._aborted_producers):
                    aiokafka_fetcher.log.debug(
                        "Skipping aborted record batch from partition %s with producer_id %s "
                        "and offsets %s to %s", tp, next_batch.producer_id,
                        next_batch.base_offset, next_batch.next_offset - 1)
                    self.next_fetch_offset = next_batch.next_offset
                    continue
            if next_batch.is_control_batch:
                self.next_fetch_offset = next_batch.next_offset
                continue
            try:
                for record in next_batch:
                    if record.offset < self.next_fetch_offset:
                        continue
                    consumer_record = self._consumer_record(tp, record)
                    self.next_fetch_offset = record.offset + 1
                    yield consumer_record
            except (UnicodeDecodeError, CorruptRecordException) as error:
                again = lenient_batch(records, next_batch, error)
                if again is None:
                    raise
                for record in again:  # those already handed over are below next_fetch_offset
                    if record.offset < self.next_fetch_offset:
                        continue
                    consumer_record = self._consumer_record(tp, record)
                    self.next_fetch_offset = record.offset + 1
                    yield consumer_record
            self.next_fetch_offset = next_batch.next_offset
