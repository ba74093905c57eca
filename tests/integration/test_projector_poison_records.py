"""Both projectors as processes against records a foreign producer wrote: none stops them.

Regression: an event whose stream id passes the envelope's `StreamId` but not `parse_stream_id`
(`user-ü1`) made `cqrs project postgres` exit 70 at the same checkpoint on every restart, while the
search projector dead-lettered it, so the two read models diverged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, Producer
from elasticsearch import AsyncElasticsearch

from projections.search.index import IndexNames
from tests.integration.projector_harness import (
    PARTITIONS,
    Projector,
    Setup,
    both_projectors,
    running_projector,
    wait_until,
)
from tests.integration.test_search_projector import running_search_projector
from tests.support.events import envelope, produce, user_created
from topics import (
    UserCreated,
    UserNameChanged,
    deadletter,
    encode,
    event_key,
    headers_for_event,
    limits,
    partition_for,
)

TOPIC_LIMIT = limits.KAFKA_MAX_MESSAGE_BYTES
"""The events topic's `max.message.bytes` (Kafka's default): the largest record batch."""


@pytest.fixture
def env(kafka_config: dict[str, str], pg_dsn: str, es_url: str,
        topic_prefix: str) -> Iterator[Setup]:
    with both_projectors(kafka_config, pg_dsn, es_url, topic_prefix) as found:
        yield found


def raw(env: Setup, key: bytes | None, value: bytes | None, partition: int,
        headers: list[tuple[str, bytes]] | None = None) -> None:
    """One record as any Kafka client could write it (no project code on the way)."""
    producer = Producer({**env.kafka_config, "message.max.bytes": 2 * TOPIC_LIMIT})
    producer.produce(env.events, key=key, value=value, partition=partition,
                     headers=headers or [])
    assert producer.flush(30) == 0


def foreign_event(stream_id: str, version: int = 1, **data: Any) -> bytes:
    return json.dumps({
        "event_id": f"foreign-{version}", "type": "UserCreated",
        "schema_version": UserCreated.schema_version,
        "stream_id": stream_id, "version": version,
        "data": data or {"email": "x@example.com", "name": "X"},
        "occurred_at": "2024-01-01T00:00:00Z"}, ensure_ascii=False).encode()


def dead_letters(env: Setup, topic: str, count: int) -> list[Message]:
    consumer = Consumer({**env.kafka_config, "group.id": f"{env.prefix}check-{topic}",
                         "auto.offset.reset": "earliest", "fetch.message.max.bytes": 2 << 20})
    consumer.subscribe([topic])
    found: list[Message] = []
    deadline = time.monotonic() + 30
    while len(found) < count and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            found.append(message)
    consumer.close()
    return found


def headers_of(message: Message) -> dict[str, bytes]:
    return {name: value for name, value in message.headers() or []}


def wait_for(projector: Projector, consumed: int, timeout: float = 90) -> None:
    def reached() -> bool:
        assert projector.process.poll() is None, projector.log.read_text(errors="replace")[-3000:]
        return projector.totals()["consumed"] >= consumed
    wait_until(reached, timeout, f"{consumed} records consumed")


def search_documents(env: Setup) -> dict[str, str]:
    async def read() -> dict[str, str]:
        async with AsyncElasticsearch(env.env["CQRS_ES_URL"]) as client:
            alias = IndexNames.for_prefix(env.prefix).alias
            await client.indices.refresh(index=alias)
            response = await client.search(index=alias, query={"match_all": {}}, size=100)
            return {hit["_id"]: hit["_source"]["name"] for hit in response.body["hits"]["hits"]}
    return asyncio.run(read())


def test_foreign_records_never_stop_either_projector_and_both_agree(
        env: Setup, tmp_path: Path) -> None:
    non_ascii = "user-ü1"
    raw(env, event_key(non_ascii, 1).encode(), foreign_event(non_ascii),
        partition_for(non_ascii.encode(), PARTITIONS), [("stream_id", non_ascii.encode())])
    raw(env, b"user-gone@1", None, partition_for("user-gone", PARTITIONS))  # tombstone
    raw(env, b"\xff\xfe", b"\x00garbage", 0, [("stream_id", b"user-\x00x"), ("type", b"\xff")])
    raw(env, None, b'"hello"', 1)
    wrong = user_created("wrong")
    raw(env, event_key("user-wrong", 1).encode(), encode(wrong),
        (partition_for("user-wrong", PARTITIONS) + 1) % PARTITIONS, headers_for_event(wrong))
    lying = user_created("lying")
    raw(env, event_key("user-lying", 1).encode(), encode(lying),
        partition_for("user-lying", PARTITIONS), [("version", b"9")])
    produce(env.kafka_config, env.events, [user_created("after")], PARTITIONS)
    expected = {"consumed": 8, "applied": 1, "skipped": 1, "parked": 1, "dead_lettered": 5}

    with running_projector(env.env, tmp_path / "pg.log") as postgres, \
            running_search_projector(env.env, tmp_path / "search.log") as search:
        wait_for(postgres, 7)
        wait_for(search, 7)
        # Another partition than user-wrong@1's: produced once that one is dead-lettered.
        produce(env.kafka_config, env.events,
                [envelope("user-wrong", 2, UserNameChanged(name="parked"))], PARTITIONS)
        wait_for(postgres, 8)
        wait_for(search, 8)
        assert postgres.totals() == expected, postgres.totals()
        assert search.totals() == expected, search.totals()
        assert postgres.process.poll() is None
        assert search.process.poll() is None
    rows = {row[0]: row[1] for row in env.query("SELECT id, name FROM users")}
    assert rows == {"after": "User after"}
    assert search_documents(env) == rows
    blocked = env.query("SELECT stream_id FROM projection_blocked_streams")
    assert sorted(row[0] for row in blocked) == ["user-lying", "user-wrong"]

    for name in ("postgres", "search"):
        letters = dead_letters(env, f"{env.prefix}projection.{name}.dlq", 5)
        classes = sorted(headers_of(m)[deadletter.ERROR_CLASS].decode() for m in letters)
        assert classes == ["HeaderMismatch", "InvalidEnvelope", "InvalidStreamId", "NotJson",
                           "WrongPartition"], (name, classes)

    # A restart resumes past them (it used to exit 70 at the same checkpoint every time).
    produce(env.kafka_config, env.events, [user_created("later")], PARTITIONS)
    with running_projector(env.env, tmp_path / "pg2.log") as postgres:
        wait_for(postgres, 1)
        time.sleep(1)
        assert postgres.totals()["consumed"] == 1
        assert postgres.process.poll() is None


def test_data_the_database_cannot_hold_is_dead_lettered(env: Setup, tmp_path: Path) -> None:
    nul = "user-nul"
    raw(env, event_key(nul, 1).encode(), foreign_event(nul, email="n@example.com", name="a\x00b"),
        partition_for(nul, PARTITIONS))
    produce(env.kafka_config, env.events, [user_created("fine")], PARTITIONS)
    with running_projector(env.env, tmp_path / "pg.log") as projector:
        wait_for(projector, 2)
        assert projector.totals() == {"consumed": 2, "applied": 1, "skipped": 0, "parked": 0,
                                      "dead_lettered": 1}
        assert projector.process.poll() is None
    assert [row[0] for row in env.query("SELECT id FROM users")] == ["fine"]
    assert [row[0] for row in env.query("SELECT stream_id FROM projection_blocked_streams")] == [
        nul]


def test_a_record_of_the_topics_largest_size_ends_as_one_bounded_dead_letter(
        env: Setup, tmp_path: Path) -> None:
    key = event_key("user-big", 1).encode()
    partition = partition_for("user-big", PARTITIONS)
    errors: list[Any] = []
    size = TOPIC_LIMIT - 61 - 16 - len(key)
    value = b""
    while not value:  # the broker refuses a batch over its limit: shrink until it takes it
        candidate = b'{"pad":"' + b"a" * (size - 10) + b'"}'
        producer = Producer({**env.kafka_config, "message.max.bytes": 2 * TOPIC_LIMIT})
        producer.produce(env.events, key=key, value=candidate, partition=partition,
                         on_delivery=lambda error, _: errors.append(error))
        producer.flush(30)
        if errors.pop() is None:
            value = candidate
        size -= 4
    assert len(value) > TOPIC_LIMIT - 200
    produce(env.kafka_config, env.events, [user_created("small")], PARTITIONS)
    with running_projector(env.env, tmp_path / "pg.log") as projector:
        wait_for(projector, 2)
        assert projector.totals()["dead_lettered"] == 1
        assert projector.process.poll() is None
    [letter] = dead_letters(env, env.dlq, 1)
    headers = headers_of(letter)
    assert headers[deadletter.TRUNCATED] == b"value"
    assert headers[deadletter.ORIGINAL_VALUE_BYTES] == str(len(value)).encode()
    assert headers[deadletter.ORIGINAL_VALUE_SHA256] == hashlib.sha256(value).hexdigest().encode()
    assert letter.value() == value[:deadletter.MAX_DEAD_LETTER_VALUE]
    assert len(letter.value() or b"") + len(letter.key() or b"") + sum(
        len(n) + len(v) for n, v in letter.headers() or []) <= deadletter.DEAD_LETTER_RECORD_LIMIT
    assert [row[0] for row in env.query("SELECT id FROM users")] == ["small"]
