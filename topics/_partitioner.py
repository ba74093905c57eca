"""Kafka's default key partitioner (Java `Utils.murmur2`, then `toPositive(h) % n`), bit for bit.

Every producer must land a stream on the same partition. The Java client hashes keys with this
murmur2; librdkafka (confluent-kafka) defaults to `consistent_random` (CRC32) and only agrees when
configured with ``partitioner=murmur2_random``. The project sets the partition explicitly with
`partition_for`, so the producer's own partitioner setting does not matter for its own records.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """The 32-bit murmur2 hash of `data` as Java computes it, returned as a signed int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> _R
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    tail = data[whole:]
    if tail:
        # Java's switch falls through: byte 2, then 1, then 0, then multiply.
        for index in range(len(tail) - 1, -1, -1):
            h ^= tail[index] << (8 * index)
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(value: int) -> int:
    """Java's `Utils.toPositive`: clear the sign bit (not `abs`, which overflows on MIN_VALUE)."""
    return value & 0x7FFFFFFF


def partition_for(key: bytes | str, partitions: int) -> int:
    """The partition the Java client's default partitioner picks for `key` (str is UTF-8)."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    raw = key.encode("utf-8") if isinstance(key, str) else key
    return to_positive(murmur2(raw)) % partitions
