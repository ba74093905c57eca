"""Known limit (docs/projections.md): a record whose header NAME is not UTF-8 stops the projector.

aiokafka's record reader (its C extension) decodes header names as UTF-8 while it unpacks a
fetch, so the `UnicodeDecodeError` comes out of Faust's `getmany` before `classify` sees any
record of that fetch: Faust's fetcher crashes, the worker stops, the process exits with status 1,
nothing of the fetch is accounted and the checkpoint stays, so a restart stops the same way.
This test pins that behaviour: when it fails, the limit is gone and the docs must say so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.projector_harness import PARTITIONS, Setup, running_projector, setup
from tests.support.events import produce, user_created
from topics import encode, event_key, partition_for

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
        await producer.send_and_wait(topic, value.encode(), key=key.encode(),
                                     partition=int(partition), headers=[(NotUtf8("x"), b"v")])
    finally:
        await producer.stop()

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.fixture
def env(kafka_config: dict[str, str], pg_dsn: str, topic_prefix: str) -> Iterator[Setup]:
    with setup(kafka_config, pg_dsn, topic_prefix) as found:
        yield found


def test_a_header_name_not_utf8_stops_the_projector_before_classification(
        env: Setup, tmp_path: Path) -> None:
    produce(env.kafka_config, env.events, [user_created("before")], PARTITIONS)
    event = user_created("named")
    subprocess.run(
        [sys.executable, "-c", PRODUCE_BAD_HEADER_NAME, env.kafka_config["bootstrap.servers"],
         env.events, str(partition_for(b"user-named", PARTITIONS)), event_key("user-named", 1),
         encode(event).decode()],
        env={**os.environ, "AIOKAFKA_NO_EXTENSIONS": "1"}, check=True, timeout=60)
    log = tmp_path / "pg.log"
    with running_projector(env.env, log) as projector:
        deadline = time.monotonic() + 90
        while projector.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        code = projector.process.poll()
    text = log.read_text(errors="replace")
    assert code == 1, text[-3000:]
    assert "UnicodeDecodeError" in text
    assert "[^---Fetcher]: Crashed" in text
    assert projector.totals()["consumed"] == 0  # classification never saw the fetch
    assert env.query("SELECT id FROM users") == []
    assert env.query("SELECT * FROM projection_checkpoints") == []
