"""murmur2 and the partition choice agree with the Java client, compiled or pure Python.

`topics.murmur2` is the `murmurhash2` package's (Rust) when it imports; a subprocess that cannot
import it runs the pure-Python fallback. Both give Kafka's reference vectors and the same hash
for tens of thousands of random keys.
"""

import json
import random
import subprocess
import sys
from pathlib import Path

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


# -- Compiled and pure Python: the same hash -------------------------------------------------

FALLBACK = """
import json, sys
sys.modules["murmurhash2"] = None  # as if it were not installed: `import` raises ImportError
from topics import murmur2, partition_for
keys = [bytes.fromhex(key) for key in json.load(sys.stdin)]
print(json.dumps([[murmur2(key), partition_for(key, 12)] for key in keys]))
"""


def random_keys(count: int) -> list[bytes]:
    """Keys of every length up to 64 (each tail length of murmur2), bytes and stream ids."""
    chance = random.Random(20261202)
    keys = [chance.randbytes(chance.randrange(65)) for _ in range(count // 2)]
    keys += [f"user-u{chance.randrange(10**9)}".encode() for _ in range(count // 4)]
    keys += [f"order-é😀{chance.random()}".encode() for _ in range(count - len(keys))]
    return keys


ROOT = Path(__file__).resolve().parents[2]
KEYS = [key for key, _ in JAVA_VECTORS] + random_keys(40_000)


@pytest.fixture(scope="module")
def pure_python() -> list[tuple[int, int]]:
    """`(murmur2, partition_for(…, 12))` of every key in `KEYS`, by the pure-Python fallback."""
    done = subprocess.run(
        [sys.executable, "-c", FALLBACK], input=json.dumps([key.hex() for key in KEYS]),
        capture_output=True, text=True, check=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    return [(hash_, partition) for hash_, partition in json.loads(done.stdout)]


def test_the_compiled_murmur2_is_installed() -> None:
    # A dependency of the project, so `topics` imported it (the fallback is for an environment
    # installed without it).
    assert sys.modules.get("murmurhash2") is not None


def test_the_fallback_gives_kafkas_vectors(pure_python: list[tuple[int, int]]) -> None:
    assert [hash_ for hash_, _ in pure_python[: len(JAVA_VECTORS)]] == [
        expected for _, expected in JAVA_VECTORS
    ]


def test_compiled_and_fallback_agree_on_random_keys(pure_python: list[tuple[int, int]]) -> None:
    compiled = [(murmur2(key), partition_for(key, 12)) for key in KEYS]
    assert compiled == pure_python


def test_any_bytes_like_key_hashes_as_its_bytes() -> None:
    key = b"user-u001"
    assert murmur2(bytearray(key)) == murmur2(memoryview(key)) == murmur2(key)  # type: ignore[arg-type]
