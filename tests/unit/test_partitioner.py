"""murmur2 and the partition choice agree with the Java client."""

import pytest

from topics import murmur2, partition_for, to_positive

# Kafka's clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2.
JAVA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
    (b"", 275646681),
]


@pytest.mark.parametrize(("key", "expected"), JAVA_VECTORS)
def test_murmur2_matches_java_utils(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_to_positive_clears_the_sign_bit_like_java() -> None:
    assert to_positive(-790332482) == 1357151166
    assert to_positive(-(2**31)) == 0


def test_partition_for_is_to_positive_modulo() -> None:
    assert partition_for(b"foobar", 50) == 16
    assert partition_for("foobar", 10) == 6


def test_str_keys_are_utf8() -> None:
    assert partition_for("user-é", 12) == partition_for("user-é".encode(), 12)


def test_partitions_must_be_positive() -> None:
    with pytest.raises(ValueError, match="partitions"):
        partition_for(b"x", 0)
