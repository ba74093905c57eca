"""Both projectors as processes against a record whose header NAME is not UTF-8: neither stops.

Regression: aiokafka's record reader (its C extension) decodes header names as UTF-8 while it
unpacks a fetch, so the `UnicodeDecodeError` came out of Faust's `getmany` before `classify` saw
any record of that fetch: the fetcher crashed, the process exited 1 with its checkpoint unmoved,
and every restart crashed the same way. Now the fetch re-reads that batch leniently
(`projections.runtime.drain`) and `classify` dead-letters the record (`UnreadableHeaders`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.projector_harness import (
    PARTITIONS,
    Setup,
    both_projectors,
    running_projector,
)
from tests.integration.test_projector_poison_records import (
    dead_letters,
    headers_of,
    search_documents,
    wait_for,
)
from tests.integration.test_search_projector import running_search_projector
from tests.support.events import envelope, produce, user_created
from topics import UserNameChanged, deadletter, encode, event_key, partition_for

# Python clients cannot write such a name (kcat can): aiokafka's pure-Python record builder,
# given a `str` whose `encode` returns bytes that are not UTF-8, writes them as they are.
PRODUCE_BAD_HEADER_NAME = """
import asyncio, sys
from aiokafka import AIOKafkaProducer

class NotUtf8(str):
    def encode(self, *args, **kwargs):
        return b"\\xff\\xfename"

async def main(bootstrap, topic, partition, key, value):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        metadata = await producer.send_and_wait(
            topic, value.encode(), key=key.encode(), partition=int(partition),
            headers=[("type", b"UserCreated"), (NotUtf8("x"), b"v")])
        print(metadata.offset)
    finally:
        await producer.stop()

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.fixture
def env(kafka_config: dict[str, str], pg_dsn: str, es_url: str,
        topic_prefix: str) -> Iterator[Setup]:
    with both_projectors(kafka_config, pg_dsn, es_url, topic_prefix) as found:
        yield found


def _same_partition_as(stream_id: str) -> str:
    """A user id whose stream lands on `stream_id`'s partition."""
    wanted = partition_for(stream_id.encode(), PARTITIONS)
    return next(f"after{n}" for n in range(1000)
                if partition_for(f"user-after{n}".encode(), PARTITIONS) == wanted)


def test_a_header_name_not_utf8_is_dead_lettered_and_both_projectors_go_on(
        env: Setup, tmp_path: Path) -> None:
    produce(env.kafka_config, env.events, [user_created("before")], PARTITIONS)
    partition = partition_for(b"user-named", PARTITIONS)
    written = subprocess.run(
        [sys.executable, "-c", PRODUCE_BAD_HEADER_NAME, env.kafka_config["bootstrap.servers"],
         env.events, str(partition), event_key("user-named", 1),
         encode(user_created("named")).decode()],
        env={**os.environ, "AIOKAFKA_NO_EXTENSIONS": "1"}, check=True, timeout=60,
        capture_output=True, text=True)
    bad_offset = int(written.stdout.split()[-1])
    after = _same_partition_as("user-named")
    produce(env.kafka_config, env.events,
            [user_created(after), envelope("user-named", 2, UserNameChanged(name="parked"))],
            PARTITIONS)
    expected = {"consumed": 4, "applied": 2, "skipped": 0, "parked": 1, "dead_lettered": 1}

    with running_projector(env.env, tmp_path / "pg.log") as postgres, \
            running_search_projector(env.env, tmp_path / "search.log") as search:
        wait_for(postgres, 4)
        wait_for(search, 4)
        time.sleep(1)
        assert postgres.totals() == expected, postgres.totals()
        assert search.totals() == expected, search.totals()
        assert postgres.process.poll() is None
        assert search.process.poll() is None
    rows = {row[0]: row[1] for row in env.query("SELECT id, name FROM users")}
    assert rows == {"before": "User before", after: f"User {after}"}
    assert search_documents(env) == rows
    assert [row[0] for row in env.query("SELECT stream_id FROM projection_blocked_streams")] == [
        "user-named"]
    checkpoints = dict(env.query("SELECT partition, \"offset\" FROM projection_checkpoints"))
    assert checkpoints[partition] > bad_offset

    for name in ("postgres", "search"):
        [letter] = dead_letters(env, f"{env.prefix}projection.{name}.dlq", 1)
        headers = headers_of(letter)  # confluent-kafka reads it: every name is UTF-8 again
        assert headers[deadletter.ERROR_CLASS] == b"UnreadableHeaders", (name, headers)
        assert b"\\xff\\xfename" in headers[deadletter.ERROR_MESSAGE]
        assert headers[deadletter.SOURCE_OFFSET] == str(bad_offset).encode()
        assert headers["??name"] == b"v"  # the builder replaces what is not UTF-8
        assert letter.key() == event_key("user-named", 1).encode()

    # A restart resumes past it (it used to exit 1 at the same checkpoint every time).
    produce(env.kafka_config, env.events, [user_created("later")], PARTITIONS)
    with running_projector(env.env, tmp_path / "pg2.log") as postgres:
        wait_for(postgres, 1)
        time.sleep(1)
        assert postgres.totals()["consumed"] == 1
        assert postgres.process.poll() is None
