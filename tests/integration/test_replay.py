"""`cqrs replay` against real Kafka and PostgreSQL, with `cqrs project postgres` as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.projector_harness import (
    PARTITIONS,
    Projector,
    Setup,
    fresh_database,
    live_dsn,
    running_projector,
    wait_until,
)
from tests.support.events import (
    create_topics,
    delete_topics,
    order_created,
    produce,
    stream,
)
from topics import (
    Catalogue,
    EventEnvelope,
    OrderPaid,
    UserCreated,
    UserDeactivated,
    UserNameChanged,
)

CHECKSUM = """
SELECT md5(coalesce(string_agg(row_text, '|' ORDER BY row_text), '')) FROM (
  SELECT 'u' || row(u.*)::text AS row_text FROM users u
  UNION ALL SELECT 'o' || row(o.*)::text FROM orders o) rows"""


@pytest.fixture
def env(kafka_config: dict[str, str], pg_dsn: str, topic_prefix: str) -> Iterator[Setup]:
    """Every catalogue topic under a fresh prefix (3 partitions) and a fresh database."""
    names = [spec.name for spec in Catalogue(prefix=topic_prefix, partitions=PARTITIONS).specs()]
    create_topics(kafka_config, names, PARTITIONS)
    try:
        with fresh_database(pg_dsn) as (name, dsn):
            variables = {"CQRS_TOPIC_PREFIX": topic_prefix, "CQRS_PG_DSN": dsn,
                         "CQRS_PARTITIONS": str(PARTITIONS),
                         "CQRS_KAFKA_BOOTSTRAP": kafka_config["bootstrap.servers"]}
            yield Setup(topic_prefix, kafka_config, live_dsn(dsn, topic_prefix), name, variables)
    finally:
        delete_topics(kafka_config, topic_prefix)


def cli(env: Setup, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cqrs", *args], capture_output=True, text=True,
                          env={**os.environ, **env.env}, timeout=timeout, check=False)


def cli_background(env: Setup, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cqrs", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env.env})


def lag(env: Setup) -> dict[str, Any]:
    done = cli(env, "lag", "--json", "--projector", "postgres")
    assert done.returncode == 0, done.stderr
    return {row["name"]: row for row in json.loads(done.stdout)}


def model(n_users: int, tag: str = "") -> list[EventEnvelope]:
    """Users created and renamed, every third deactivated, and an order per user, paid."""
    events: list[EventEnvelope] = []
    for n in range(n_users):
        user_id = f"{tag}u{n}"
        history: list[Any] = [UserCreated(email=f"{user_id}@x.io", name=user_id),
                              UserNameChanged(name=f"{user_id}-2")]
        if n % 3 == 0:
            history.append(UserDeactivated())
        events += stream(f"user-{user_id}", history)
        events += stream(f"order-{tag}o{n}", [order_created(f"{tag}o{n}", user_id, 100 + n),
                                               OrderPaid(payment_ref=f"p{n}",
                                                                amount=100 + n)])
    return events


def checksum(env: Setup) -> str:
    return str(env.query(CHECKSUM)[0][0])


def checkpoints(env: Setup) -> dict[int, int]:
    rows = env.query('SELECT partition, "offset" FROM projection_checkpoints WHERE topic = %s',
                     (env.events,))
    return {row[0]: row[1] for row in rows}


def project_all(env: Setup, log: Path, consumed: int) -> dict[str, int]:
    with running_projector(env.env, log) as projector:
        wait_until(lambda: projector.totals()["consumed"] >= consumed, 90, f"{consumed} events")
        time.sleep(0.5)
        return projector.totals()


def test_replay_from_the_beginning_reproduces_the_model(env: Setup, tmp_path: Path) -> None:
    events = model(40)
    produce(env.kafka_config, env.events, events, PARTITIONS)
    project_all(env, tmp_path / "first.log", len(events))
    before = checksum(env)

    # over the existing model: every event re-applied, none changes a row
    done = cli(env, "replay", "postgres", "--from-beginning")
    assert done.returncode == 0, done.stderr
    assert checkpoints(env) == dict.fromkeys(range(PARTITIONS), -1)
    assert lag(env)["postgres"]["lag"] == len(events)
    follower = cli_background(env, "replay", "postgres", "--from-beginning", "--wait",
                              "--timeout", "90")
    with running_projector(env.env, tmp_path / "again.log") as projector:
        _, stderr = follower.communicate(timeout=120)
        assert follower.returncode == 0, stderr
        assert "caught up" in stderr
        totals = projector.totals()
    assert totals["consumed"] == len(events)
    assert (totals["applied"], totals["skipped"]) == (0, len(events))
    assert checksum(env) == before

    # over an emptied model: rebuilt row for row
    with psycopg.connect(env.dsn) as connection:
        connection.execute("TRUNCATE users, orders")
    assert cli(env, "replay", "postgres", "--from-beginning").returncode == 0
    totals = project_all(env, tmp_path / "rebuild.log", len(events))
    assert totals["applied"] == len(events)
    assert checksum(env) == before


def test_replay_from_an_offset_and_a_timestamp(env: Setup, tmp_path: Path) -> None:
    first, second = model(15, "a"), model(15, "b")
    produce(env.kafka_config, env.events, first, PARTITIONS)
    time.sleep(1.2)
    middle = datetime.now(UTC).isoformat()
    time.sleep(0.3)
    produce(env.kafka_config, env.events, second, PARTITIONS)
    project_all(env, tmp_path / "first.log", len(first) + len(second))
    ends = {p: offset + 1 for p, offset in checkpoints(env).items()}

    done = cli(env, "replay", "postgres", "--from-timestamp", middle)
    assert done.returncode == 0, done.stderr
    totals = project_all(env, tmp_path / "ts.log", len(second))
    assert totals["consumed"] == len(second)
    assert totals["skipped"] == len(second)

    positions = ",".join(f"{p}:{max(0, end - 5)}" for p, end in ends.items())
    done = cli(env, "replay", "postgres", "--from-offset", positions)
    assert done.returncode == 0, done.stderr
    assert checkpoints(env) == {p: max(0, end - 5) - 1 for p, end in ends.items()}
    expected = sum(min(5, end) for end in ends.values())
    totals = project_all(env, tmp_path / "offsets.log", expected)
    assert totals["consumed"] == expected

    done = cli(env, "replay", "postgres", "--from-offset", "1:0", "--partition", "1")
    assert done.returncode == 0, done.stderr
    assert checkpoints(env) == {**{p: end - 1 for p, end in ends.items()}, 1: -1}


def test_replay_refuses_while_the_projector_runs(env: Setup, tmp_path: Path) -> None:
    produce(env.kafka_config, env.events, model(3), PARTITIONS)
    with running_projector(env.env, tmp_path / "p.log") as projector:
        wait_until(lambda: projector.totals()["consumed"] >= 13, 90, "13 events")
        wait_until(lambda: lag(env)["postgres"]["state"] == "running", 30, "a group member")
        before = checkpoints(env)
        done = cli(env, "replay", "postgres", "--from-beginning")
        assert done.returncode == 1
        assert "is running" in done.stderr
        assert "cqrs lag" in done.stderr
        assert checkpoints(env) == before
    done = cli(env, "replay", "postgres", "--from-offset", "x:1")
    assert done.returncode == 2


def test_search_checkpoints_move_backwards_for_a_replay(es_url: str, topic_prefix: str) -> None:
    """Elasticsearch checkpoints are versioned by offset (never backwards for the projector);
    `set_checkpoints` still moves them back, to -1 too (nothing read yet)."""
    import asyncio

    from elasticsearch import AsyncElasticsearch

    from projections.runtime.records import Batch
    from projections.search.index import IndexNames
    from projections.search.projector import SearchProjectorStore

    async def scenario() -> list[dict[int, int]]:
        client = AsyncElasticsearch(es_url)
        names = IndexNames.for_prefix(topic_prefix)
        store = SearchProjectorStore(client, names, refresh="wait_for")
        try:
            await store.start()
            topic = f"{topic_prefix}events"
            await store.apply(Batch([], checkpoints={(topic, 0): 40, (topic, 1): 7}))
            seen = [await store.checkpoints(topic)]
            await store.set_checkpoints(topic, {0: 11, 1: -1})
            seen.append(await store.checkpoints(topic))
            await store.apply(Batch([], checkpoints={(topic, 0): 12, (topic, 1): 3}))
            seen.append(await store.checkpoints(topic))
            return seen
        finally:
            found = await client.indices.get(index=f"{names.pattern},{names.alias}*")
            for index in found.body:
                await client.indices.delete(index=index)
            await client.close()

    assert asyncio.run(scenario()) == [{0: 40, 1: 7}, {0: 11, 1: -1}, {0: 12, 1: 3}]


def test_search_projector_replays_from_the_beginning(env: Setup, es_url: str,
                                                     tmp_path: Path) -> None:
    """The search projector as a process: replayed from the beginning, every event is consumed
    again and none changes a document (external versions)."""
    from elasticsearch import Elasticsearch

    from projections.search.index import IndexNames

    events = model(10)
    produce(env.kafka_config, env.events, events, PARTITIONS)
    search_env = {**env.env, "CQRS_ES_URL": es_url}
    names = IndexNames.for_prefix(env.prefix)

    def run(log: Path) -> dict[str, int]:
        with log.open("ab") as out:
            process = subprocess.Popen([sys.executable, "-m", "cqrs", "project", "search"],
                                       env={**os.environ, **search_env}, stdout=out,
                                       stderr=subprocess.STDOUT)
        projector = Projector(process, log)
        try:
            wait_until(lambda: projector.totals()["consumed"] >= len(events), 120, "events")
            return projector.totals()
        finally:
            projector.stop()

    client = Elasticsearch(es_url)
    try:
        first = run(tmp_path / "first.log")
        documents = documents_of(client, names.alias)
        done = cli(env, "replay", "search", "--from-beginning")
        assert done.returncode == 0, done.stderr
        again = run(tmp_path / "again.log")
        after = documents_of(client, names.alias)
    finally:
        for index in client.indices.get(index=f"{names.pattern},{names.alias}*"):
            client.indices.delete(index=index)
        client.close()
    assert first["applied"] > 0
    assert (again["consumed"], again["applied"]) == (len(events), 0)
    assert after == documents


def documents_of(client: Any, alias: str) -> list[tuple[str, int, dict[str, Any]]]:
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, size=100, sort=["_doc"], version=True)["hits"]["hits"]
    return [(hit["_id"], hit["_version"], hit["_source"]) for hit in hits]
