"""`cqrs rebuild search` on the real services: the alias moves to a rebuilt index while events
flow and a reader checks every answer (realtime gets and searches through the alias)."""

from __future__ import annotations

import asyncio
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, NotFoundError

from projections.search.index import IndexNames, drop_indices
from projections.search.query import UserSearch
from projections.search.store import ElasticsearchUserStore
from tests.integration.projector_harness import PARTITIONS
from tests.integration.test_rebuild_postgres import Writer, created
from tests.integration.test_search_projector import running_search_projector
from tests.support.events import create_topics, delete_topics, envelope, produce
from topics import UserNameChanged


@dataclass
class SearchSetup:
    prefix: str
    kafka_config: dict[str, str]
    es_url: str
    env: dict[str, str]

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    @property
    def names(self) -> IndexNames:
        return IndexNames.for_prefix(self.prefix)


@pytest.fixture
def env(kafka_config: dict[str, str], es_url: str, topic_prefix: str) -> Iterator[SearchSetup]:
    create_topics(kafka_config, [f"{topic_prefix}events", f"{topic_prefix}projection.search.dlq"],
                  PARTITIONS)
    found = SearchSetup(topic_prefix, kafka_config, es_url, {
        "CQRS_TOPIC_PREFIX": topic_prefix, "CQRS_ES_URL": es_url,
        "CQRS_KAFKA_BOOTSTRAP": kafka_config["bootstrap.servers"]})
    try:
        yield found
    finally:
        delete_topics(kafka_config, topic_prefix)
        asyncio.run(_es(found, lambda client: drop_indices(client, found.names)))


async def _es(env: SearchSetup, work: Any) -> Any:
    async with AsyncElasticsearch(env.es_url) as client:
        return await work(client)


def cli(env: SearchSetup, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cqrs", "rebuild", "search", *args],
                          env={**os.environ, **env.env}, capture_output=True, timeout=600,
                          check=False)
    output = done.stdout.decode()
    assert done.returncode == 0, output + done.stderr.decode()[-3000:]
    return output


def documents(env: SearchSetup, index: str) -> list[dict[str, Any]]:
    async def work(client: AsyncElasticsearch) -> list[dict[str, Any]]:
        await client.indices.refresh(index=index)
        response = await client.search(index=index, size=10_000, sort=["user_id"],
                                       query={"match_all": {}})
        return [hit["_source"] for hit in response.body["hits"]["hits"]]
    try:
        result: list[dict[str, Any]] = asyncio.run(_es(env, work))
    except NotFoundError:
        return []
    return result


@dataclass
class Reader:
    env: SearchSetup
    known: list[str]
    stop: threading.Event = field(default_factory=threading.Event)
    failures: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    answers: int = 0

    def run(self) -> None:
        asyncio.run(_es(self.env, self._loop))

    async def _loop(self, client: AsyncElasticsearch) -> None:
        alias = self.env.names.alias
        store, search = ElasticsearchUserStore(client, alias), UserSearch(client, alias)
        while not self.stop.is_set():
            user_id = random.choice(self.known)
            document = await store.get_document(user_id)
            everyone = await search.search_users("example", limit=1)
            self.answers += 1
            if document is None or document.email != f"{user_id}@example.com":
                self.failures.append(f"{user_id}: missing or partial {document!r}")
            elif document.version < self.seen.get(user_id, 0):
                self.failures.append(f"{user_id}: version went down to {document.version}")
            else:
                self.seen[user_id] = document.version
            if everyone.total < len(self.known):
                self.failures.append(f"search found {everyone.total} < {len(self.known)} users")


def test_rebuild_moves_the_alias_under_writes_and_reads(env: SearchSetup, tmp_path: Path) -> None:
    known = [f"u{n}" for n in range(1500)]
    history = [envelope(f"user-{u}", 1, created(u)) for u in known]
    history += [envelope(f"user-{u}", v, UserNameChanged(name=f"Name {u} v{v}"))
                for v in (2, 3) for u in known]
    produce(env.kafka_config, env.events, history, PARTITIONS)
    names = {u: (f"Name {u} v3", 3) for u in known}
    with running_search_projector(env.env, tmp_path / "projector.log") as projector:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            docs = documents(env, env.names.alias) if projector.process.poll() is None else []
            if sum(1 for d in docs if d["version"] == 3) == len(known):
                break
            time.sleep(1)
        writer, reader = Writer(env, names), Reader(env, known)  # type: ignore[arg-type]
        threads = [threading.Thread(target=writer.run), threading.Thread(target=reader.run)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1)
            output = cli(env)
            time.sleep(2)
        finally:
            writer.stop.set()
            reader.stop.set()
            for thread in threads:
                thread.join(60)
        print(output, f"writes: {writer.produced}, reads checked: {reader.answers}")
        assert f"swapped: {env.names.versioned(2)} is live" in output
        assert reader.failures == []
        assert reader.answers > 20

        def differences() -> list[Any]:
            docs = {d["user_id"]: (d["name"], d["version"])
                    for d in documents(env, env.names.alias)}
            return [(u, docs.get(u), want) for u, want in writer.names.items()
                    if docs.get(u) != want] + [u for u in docs if u not in writer.names]
        deadline = time.monotonic() + 120
        while differs := differences():
            assert time.monotonic() < deadline, (len(differs), differs[:10])
            time.sleep(1)
        assert projector.process.poll() is None

    pit = re.search(r"model (\S+-pit)", cli(env, "--until", "2999-01-01T00:00:00Z"))
    assert pit is not None
    assert documents(env, pit[1]) == documents(env, env.names.alias)
    assert env.names.versioned(1) in cli(env, "--list")
    cli(env, "--drop-old")
    cli(env, "--drop", pit[1])
    listed = cli(env, "--list")
    assert env.names.versioned(1) not in listed
    assert "-pit" not in listed
