"""`cqrs rebuild postgres` on the real services: a rebuild under writes and reads, and a
point-in-time build. Each test has its own topics and database (`projector_harness.setup`)."""

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
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from projections.postgres.schema import schema_for_prefix
from projections.postgres.store import PostgresStore
from projections.queries import GetUser, GetUserStats, get_user, get_user_stats
from tests.integration.projector_harness import (
    PARTITIONS,
    Setup,
    running_projector,
    setup,
    wait_until,
)
from tests.support.events import envelope, produce
from topics import UserCreated, UserNameChanged, encode, event_key, headers_for_event, partition_for

CHECKSUM = ("SELECT count(*), md5(string_agg(concat_ws('|', id, email, name, active, created_at,"
            " updated_at, version), ',' ORDER BY id)) FROM {schema}.users")


@pytest.fixture
def env(kafka_config: dict[str, str], pg_dsn: str, topic_prefix: str) -> Iterator[Setup]:
    with setup(kafka_config, pg_dsn, topic_prefix) as found:
        yield found


def cli(env: Setup, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cqrs", "rebuild", "postgres", *args],
                          env={**os.environ, **env.env}, capture_output=True, timeout=600,
                          check=False)
    output = done.stdout.decode()
    assert done.returncode == 0, output + done.stderr.decode()[-3000:]
    return output


def created(user_id: str) -> UserCreated:
    return UserCreated(email=f"{user_id}@example.com", name=f"User {user_id}")


def checksum(env: Setup, schema: str) -> tuple[int, str]:
    count, digest = env.query(CHECKSUM.format(schema=schema))[0]
    return int(count), str(digest)


def end_offsets(env: Setup) -> dict[int, int]:
    consumer = Consumer({**env.kafka_config, "group.id": "rebuild-test-watermarks"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(env.events, p), timeout=10)[1]
                for p in range(PARTITIONS)}
    finally:
        consumer.close()


@dataclass
class Writer:
    """Keeps renaming known users (and creating new ones) until stopped; knows the end state."""

    env: Setup
    names: dict[str, tuple[str, int]]
    stop: threading.Event = field(default_factory=threading.Event)
    produced: int = 0

    def run(self) -> None:
        producer = Producer(self.env.kafka_config)
        known, fresh = list(self.names), 0
        while not self.stop.is_set():
            for _ in range(50):
                if random.random() < 0.1:
                    fresh += 1
                    user_id, version, event = f"n{fresh}", 1, created(f"n{fresh}")
                    name = event.name
                else:
                    user_id = random.choice(known)
                    version = self.names[user_id][1] + 1
                    name = f"Name {user_id} v{version}"
                    event = UserNameChanged(name=name)
                item = envelope(f"user-{user_id}", version, event, datetime.now(UTC))
                producer.produce(self.env.events, key=event_key(item.stream_id, version),
                                 value=encode(item), headers=headers_for_event(item),
                                 partition=partition_for(item.stream_id, PARTITIONS))
                self.names[user_id] = (name, version)
                self.produced += 1
            producer.flush(30)
            time.sleep(0.05)
        assert producer.flush(30) == 0


@dataclass
class Reader:
    """Queries known users and the statistics without pause; every answer is checked."""

    env: Setup
    known: list[str]
    stop: threading.Event = field(default_factory=threading.Event)
    failures: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    answers: int = 0
    final: dict[str, tuple[str, int]] | None = None

    def run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        # One connection throughout, as a gateway's: its prepared statements were planned
        # against the old schema and must follow the swap, not keep reading the retired tables.
        store = PostgresStore(self.env.dsn)
        try:
            while not self.stop.is_set():
                if self.final is not None:
                    await self._verify(store, self.final)
                    return
                user_id = random.choice(self.known)
                user = await get_user(store, GetUser(id=user_id))
                stats = await get_user_stats(store, GetUserStats())
                self.answers += 1
                self._check(user_id, user, stats.total)
        finally:
            await store.close()

    async def _verify(self, store: PostgresStore, final: dict[str, tuple[str, int]]) -> None:
        for user_id in self.known:
            user = await get_user(store, GetUser(id=user_id))
            if user is None or (user.name, user.version) != final[user_id]:
                self.failures.append(f"{user_id}: {user!r} is not the final {final[user_id]}")

    def _check(self, user_id: str, user: object, total: int) -> None:
        from projections.postgres.models import User

        if not isinstance(user, User):
            self.failures.append(f"{user_id}: no answer ({user!r})")
            return
        if user.email != f"{user_id}@example.com" or not user.name:
            self.failures.append(f"{user_id}: partial row {user!r}")
        if user.version < self.seen.get(user_id, 0):
            self.failures.append(f"{user_id}: version went down {self.seen[user_id]} → "
                                 f"{user.version}")
        self.seen[user_id] = user.version
        if total < len(self.known):
            self.failures.append(f"statistics count {total} users, fewer than {len(self.known)}")


def test_rebuild_swaps_under_writes_and_reads(env: Setup, tmp_path: Path) -> None:
    known = [f"u{n}" for n in range(3000)]
    history = [envelope(f"user-{u}", 1, created(u)) for u in known]
    history += [envelope(f"user-{u}", v, UserNameChanged(name=f"Name {u} v{v}"))
                for v in (2, 3) for u in known]
    produce(env.kafka_config, env.events, history, PARTITIONS)
    names = {u: (f"Name {u} v3", 3) for u in known}
    with running_projector(env.env, tmp_path / "projector.log") as projector:
        wait_until(lambda: env.query("SELECT count(*) FROM users WHERE version = 3")[0][0]
                   == len(known), 120, "the live projector to catch up")
        writer, reader = Writer(env, names), Reader(env, known)
        threads = [threading.Thread(target=writer.run), threading.Thread(target=reader.run)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1)
            output = cli(env)
            time.sleep(2)
        finally:
            writer.stop.set()
            threads[0].join(60)
        print(output, f"writes during the rebuild: {writer.produced}, "
              f"reads checked: {reader.answers}")
        live = schema_for_prefix(env.prefix)
        assert f"swapped: {live}__rebuild_1 is live" in output
        assert writer.produced > 500
        assert env.query("SELECT nspname FROM pg_namespace WHERE nspname ~ '__(rebuild|retired)'"
                         ) == [(f"{live}__retired_1",)]

        expected = dict(writer.names)
        def matches() -> bool:
            rows = env.query("SELECT id, name, version FROM users")
            return {r[0]: (r[1], r[2]) for r in rows} == expected
        try:
            wait_until(matches, 120, "the live projector to apply every event into the new schema")
        finally:
            reader.final = expected
            threads[1].join(60)
            reader.stop.set()
        assert reader.failures == []
        assert reader.answers > 50
        assert projector.process.poll() is None

    ends = end_offsets(env)
    until = ",".join(f"{p}:{end - 1}" for p, end in ends.items())
    pit = re.search(r"model (\w+__pit_\d+)", cli(env, "--until", until))
    assert pit is not None
    assert checksum(env, pit[1]) == checksum(env, live)
    assert checksum(env, live)[0] == len(expected)

    cli(env, "--drop-old")
    cli(env, "--drop", pit[1])
    assert "retired_1" not in cli(env, "--list")
    assert env.query("SELECT count(*) FROM pg_namespace WHERE nspname ~ '__(retired|pit)_'"
                     ) == [(0,)]


def test_point_in_time_build_holds_exactly_the_events_up_to_its_bound(env: Setup) -> None:
    first = [f"a{n}" for n in range(600)]
    produce(env.kafka_config, env.events, [envelope(f"user-{u}", 1, created(u)) for u in first],
            PARTITIONS)
    ends = end_offsets(env)
    time.sleep(1.2)
    moment = datetime.now(UTC)
    time.sleep(1.2)
    later = [f"b{n}" for n in range(400)]
    produce(env.kafka_config, env.events, [envelope(f"user-{u}", 1, created(u)) for u in later],
            PARTITIONS)

    by_offset = re.search(r"model (\w+__pit_\d+)", cli(
        env, "--until", ",".join(f"{p}:{end - 1}" for p, end in ends.items())))
    by_time = re.search(r"model (\w+__pit_\d+)", cli(env, "--until", moment.isoformat()))
    assert by_offset is not None
    assert by_time is not None
    for schema in (by_offset[1], by_time[1]):
        ids = {row[0] for row in env.query(f"SELECT id FROM {schema}.users")}
        assert ids == set(first)
    assert env.query("SELECT to_regclass('public.users')") == [(None,)]
    assert env.query("SELECT to_regclass('users')") == [(None,)]  # no live model yet
    listed = cli(env, "--list")
    assert by_offset[1] in listed
    assert by_time[1] in listed
