"""`cqrs project search` end to end: events topic → Faust projector process → Elasticsearch."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch

from projections.search.index import IndexNames, drop_indices
from projections.search.query import UserSearch, UserSearchResult
from tests.integration.projector_harness import PARTITIONS, Projector
from tests.support.events import create_topics, delete_topics, order_created, produce, stream
from topics import UserCreated, UserDeactivated, UserNameChanged


@contextmanager
def running_search_projector(env: dict[str, str], log: Path) -> Iterator[Projector]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cqrs", "project", "search"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    projector = Projector(process, log)
    try:
        yield projector
    finally:
        projector.stop()


@pytest.fixture
def env(kafka_config: dict[str, str], es_url: str, topic_prefix: str) -> Iterator[dict[str, str]]:
    create_topics(
        kafka_config, [f"{topic_prefix}events", f"{topic_prefix}projection.search.dlq"], PARTITIONS
    )
    try:
        yield {
            "CQRS_TOPIC_PREFIX": topic_prefix,
            "CQRS_ES_URL": es_url,
            "CQRS_KAFKA_BOOTSTRAP": kafka_config["bootstrap.servers"],
        }
    finally:
        delete_topics(kafka_config, topic_prefix)
        asyncio.run(_drop(es_url, IndexNames.for_prefix(topic_prefix)))


async def _drop(es_url: str, names: IndexNames) -> None:
    async with AsyncElasticsearch(es_url) as client:
        await drop_indices(client, names)


def search(env: dict[str, str], text: str) -> UserSearchResult:
    async def work() -> UserSearchResult:
        async with AsyncElasticsearch(env["CQRS_ES_URL"]) as client:
            names = IndexNames.for_prefix(env["CQRS_TOPIC_PREFIX"])
            return await UserSearch(client, names.alias).search_users(text)

    return asyncio.run(work())


def wait_for(projector: Projector, consumed: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while projector.totals()["consumed"] < consumed:
        assert projector.process.poll() is None, projector.log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, f"timed out; totals {projector.totals()}"
        time.sleep(0.3)


def test_project_search_from_the_events_topic(
    env: dict[str, str], kafka_config: dict[str, str], tmp_path: Path
) -> None:
    events = [
        *stream(
            "user-alice",
            [
                UserCreated(email="alice@example.com", name="Alice"),
                UserNameChanged(name="Alice Liddell"),
            ],
        ),
        *stream(
            "user-bob",
            [UserCreated(email="bob@example.com", name="Bob"), UserDeactivated()],
        ),
        *stream("order-o1", [order_created("o1", "alice")]),
    ]
    topic = f"{env['CQRS_TOPIC_PREFIX']}events"
    produce(kafka_config, topic, events, PARTITIONS)
    with running_search_projector(env, tmp_path / "p.log") as projector:
        wait_for(projector, 5)
        assert projector.totals()["applied"] == 4
        produce(kafka_config, topic, events, PARTITIONS)  # every event again
        wait_for(projector, 10)
        assert projector.totals()["skipped"] == 6  # 5 redelivered + 1 order event
        time.sleep(1.5)  # refresh_interval
        result = search(env, "alise")
        assert [(hit.id, hit.name, hit.version) for hit in result.hits] == [
            ("alice", "Alice Liddell", 2)
        ]
        assert [(hit.id, hit.active) for hit in search(env, "bob").hits] == [("bob", False)]
