"""Two deployments (topic prefixes) in one PostgreSQL database: each in its own schema.

Regression: every prefix's projector wrote the first schema of the DSN's search path (`public`),
so `GET /stats/users` counted every deployment's users, and `cqrs rebuild postgres` of one prefix
swapped `public` away from under the others. Here two prefixes share one database, both
projectors run, and: each prefix's statistics count only its own users; a rebuild of one (and
its `--drop-old`) leaves the other's rows, checkpoints, blocked and parked streams as they were;
a swap lock held on one schema never holds back the other's batches; a third prefix pointed at
a schema another owns is refused.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from projections.config import PostgresConfig
from projections.postgres.migrate import SchemaOwned
from projections.postgres.schema import schema_for_prefix
from projections.postgres.store import SWAP_LOCK, PostgresStore
from projections.queries import GetUserStats, get_user_stats
from tests.integration.projector_harness import (
    PARTITIONS,
    Setup,
    fresh_database,
    live_dsn,
    running_projector,
    wait_until,
)
from tests.support.events import (
    create_topics,
    delete_topics,
    envelope,
    produce,
    produce_raw,
    user_created,
)
from topics import UserNameChanged, partition_for

A_USERS, B_USERS = 40, 25
STATE = {
    "users": "SELECT id, name, version FROM users ORDER BY id",
    "checkpoints": 'SELECT projector, topic, partition, "offset" FROM projection_checkpoints'
                   " ORDER BY 1, 2, 3",
    "blocked": "SELECT projector, stream_id, topic, partition, \"offset\""
               " FROM projection_blocked_streams ORDER BY 2",
    "parked": 'SELECT projector, stream_id, topic, partition, "offset"'
              " FROM projection_parked ORDER BY 3, 4, 5",
}


@pytest.fixture
def pair(kafka_config: dict[str, str], pg_dsn: str) -> Iterator[tuple[Setup, Setup]]:
    """Two fresh prefixes (events and DLQ topics each) and ONE fresh database for both."""
    run = uuid.uuid4().hex[:8]
    prefixes = (f"test-{run}-a.", f"test-{run}-b.")
    for prefix in prefixes:
        create_topics(kafka_config, [f"{prefix}events", f"{prefix}projection.postgres.dlq"],
                      PARTITIONS)
    try:
        with fresh_database(pg_dsn) as (name, dsn):
            yield tuple(  # type: ignore[misc]
                Setup(prefix, kafka_config, live_dsn(dsn, prefix), name,
                      {"CQRS_TOPIC_PREFIX": prefix, "CQRS_PG_DSN": dsn,
                       "CQRS_KAFKA_BOOTSTRAP": kafka_config["bootstrap.servers"]})
                for prefix in prefixes)
    finally:
        for prefix in prefixes:
            delete_topics(kafka_config, prefix)


def rebuild_cli(env: Setup, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cqrs", "rebuild", "postgres", *args],
                          env={**os.environ, **env.env, "COLUMNS": "400", **extra},
                          capture_output=True,
                          text=True, timeout=300, check=False)


def config_of(env: Setup, schema: str | None = None) -> PostgresConfig:
    return PostgresConfig.for_prefix(env.env["CQRS_PG_DSN"], env.prefix, schema)


def stats_total(env: Setup) -> int:
    """`GetUserStats` as `GET /stats/users` answers it for `env`'s prefix."""
    async def total() -> int:
        store = PostgresStore.live(config_of(env))
        try:
            return (await get_user_stats(store, GetUserStats())).total
        finally:
            await store.close()
    return asyncio.run(total())


def state(env: Setup) -> dict[str, list[tuple[Any, ...]]]:
    return {name: env.query(query) for name, query in STATE.items()}


def traffic(env: Setup, users: int, poison: bool = False) -> None:
    """`users` users (ids shared by both prefixes: u0, u1, ...), each renamed once; with
    `poison`, stream user-p1 dead-lettered (not JSON) and its next event parked behind it."""
    history = [user_created(f"u{n}") for n in range(users)]
    history += [envelope(f"user-u{n}", 2, UserNameChanged(name=f"{env.prefix} u{n}"))
                for n in range(users)]
    produce(env.kafka_config, env.events, history, PARTITIONS)
    if poison:
        partition = partition_for("user-p1", PARTITIONS)
        produce_raw(env.kafka_config, env.events, b"user-p1@1", b"not json", partition)
        produce(env.kafka_config, env.events,
                [envelope("user-p1", 2, UserNameChanged(name="parked"))], PARTITIONS)


def test_two_prefixes_in_one_database_never_see_or_touch_each_other(
        pair: tuple[Setup, Setup], tmp_path: Path) -> None:
    a, b = pair
    assert schema_for_prefix(a.prefix) != schema_for_prefix(b.prefix)
    traffic(a, A_USERS)
    traffic(b, B_USERS, poison=True)
    with running_projector(a.env, tmp_path / "a.log") as pa, \
            running_projector(b.env, tmp_path / "b.log") as pb:
        wait_until(lambda: a.query("SELECT count(*) FROM users WHERE version = 2")[0][0]
                   == A_USERS, 90, "prefix a projected")
        wait_until(lambda: b.query("SELECT count(*) FROM users WHERE version = 2")[0][0]
                   == B_USERS and len(b.query(STATE["parked"])) == 1, 90, "prefix b projected")
        assert b.query(STATE["blocked"])[0][1] == "user-p1"
        assert a.query(STATE["blocked"]) == []
        # Each prefix's statistics and rows are its own, though the user ids are the same.
        assert (stats_total(a), stats_total(b)) == (A_USERS, B_USERS)
        assert a.query("SELECT name FROM users WHERE id = 'u0'") == [(f"{a.prefix} u0",)]
        assert b.query("SELECT name FROM users WHERE id = 'u0'") == [(f"{b.prefix} u0",)]
        assert a.query("SELECT prefix FROM schema_owner") == [(a.prefix,)]
        assert b.query("SELECT prefix FROM schema_owner") == [(b.prefix,)]
        public = a.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert public == [(0,)]

        swap_lock_of_a_never_holds_b_back(a, b)  # one more user each: held-a, held-b
        a_users, b_users = A_USERS + 1, B_USERS + 1
        assert (stats_total(a), stats_total(b)) == (a_users, b_users)

        before = state(b)
        rebuilt = rebuild_cli(a)
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr[-3000:]
        live_a = schema_for_prefix(a.prefix)
        assert f"swapped: {live_a}__rebuild_1 is live" in rebuilt.stdout
        assert state(b) == before
        assert (stats_total(a), stats_total(b)) == (a_users, b_users)
        listed_b = rebuild_cli(b, "--list")
        assert listed_b.returncode == 0, listed_b.stderr
        assert "__retired_" not in listed_b.stdout
        assert f"{live_a}__retired_1" in rebuild_cli(a, "--list").stdout
        dropped = rebuild_cli(a, "--drop-old")
        assert dropped.returncode == 0, dropped.stderr
        refused = rebuild_cli(b, "--drop", f"{live_a}__rebuild_9")
        assert refused.returncode == 1
        assert "not a rebuild, retired or point-in-time schema" in refused.stderr

        # Both projectors still apply what comes next, each into its own schema.
        produce(a.kafka_config, a.events, [user_created("late-a")], PARTITIONS)
        produce(b.kafka_config, b.events, [user_created("late-b")], PARTITIONS)
        wait_until(lambda: stats_total(a) == a_users + 1 and stats_total(b) == b_users + 1,
                   60, "both projectors to apply their late user")
        assert b.query("SELECT count(*) FROM users WHERE id = 'late-a'") == [(0,)]
        assert state(b)["blocked"] == before["blocked"]
        assert state(b)["parked"] == before["parked"]
        assert pa.process.poll() is None
        assert pb.process.poll() is None
    assert sorted(row[0] for row in a.query(
        "SELECT nspname FROM pg_namespace WHERE nspname ~ '^test_'")) == sorted(
        [schema_for_prefix(a.prefix), schema_for_prefix(b.prefix)])


def swap_lock_of_a_never_holds_b_back(a: Setup, b: Setup) -> None:
    """While a swap of a's schema holds its lock, b's projector goes on and a's waits."""
    live_a = schema_for_prefix(a.prefix)
    with psycopg.connect(a.dsn) as holder, holder.transaction():
        holder.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (SWAP_LOCK, live_a))
        produce(a.kafka_config, a.events, [user_created("held-a")], PARTITIONS)
        produce(b.kafka_config, b.events, [user_created("held-b")], PARTITIONS)
        wait_until(lambda: b.query("SELECT count(*) FROM users WHERE id = 'held-b'")[0][0] == 1,
                   30, "prefix b's batch while a's schema is locked for a swap")
        time.sleep(2)
        assert a.query("SELECT count(*) FROM users WHERE id = 'held-a'") == [(0,)]
    wait_until(lambda: a.query("SELECT count(*) FROM users WHERE id = 'held-a'")[0][0] == 1,
               30, "prefix a's batch once the swap lock is released")


def test_a_prefix_pointed_at_a_schema_another_owns_is_refused(
        pair: tuple[Setup, Setup]) -> None:
    a, b = pair
    taken = schema_for_prefix(a.prefix)

    async def start(config: PostgresConfig) -> None:
        store = PostgresStore.live(config)
        try:
            await store.start()
        finally:
            await store.close()

    asyncio.run(start(config_of(a)))
    with pytest.raises(SchemaOwned, match="set CQRS_PG_SCHEMA to an unused name") as refused:
        asyncio.run(start(config_of(b, schema=taken)))
    assert (refused.value.owner, refused.value.prefix) == (a.prefix, b.prefix)
    assert b.query(f"SELECT count(*) FROM {taken}.schema_migrations")[0][0] >= 1
    listed = rebuild_cli(b, "--list", CQRS_PG_SCHEMA=taken)
    assert listed.returncode == 1
    assert f"belongs to topic prefix {a.prefix!r}" in listed.stderr
    projector = subprocess.run(
        [sys.executable, "-m", "cqrs", "project", "postgres"], capture_output=True, text=True,
        env={**os.environ, **b.env, "CQRS_PG_SCHEMA": taken,
             "CQRS_PROJECTOR_POSTGRES_METRICS_PORT": "0"}, timeout=120, check=False)
    assert projector.returncode != 0  # stops at its start, before a batch
    assert "SchemaOwned" in projector.stdout + projector.stderr
    assert a.query("SELECT prefix FROM schema_owner") == [(a.prefix,)]
    asyncio.run(start(config_of(a)))  # its owner starts again as before
