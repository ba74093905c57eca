"""Two `cqrs project postgres` processes in one group while events flow: members join and leave
(rebalances), and the read model ends exact, nothing dead-lettered or parked, the store's
checkpoints at each partition's last event, and the group's committed offsets past it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.integration.projector_harness import (
    PARTITIONS,
    Setup,
    running_projector,
    setup,
    wait_until,
)
from tests.support.events import produce, stream
from topics import EventEnvelope, UserCreated, UserNameChanged

PER_ROUND = 25
BACKLOG = 100_000
"""Users waiting before the members start: the first is still catching up (its fetches channel
full) when the second joins, so that rebalance clears a full channel."""


@pytest.fixture
def env(kafka_config: dict[str, str], pg_dsn: str, topic_prefix: str) -> Iterator[Setup]:
    with setup(kafka_config, pg_dsn, topic_prefix) as found:
        yield found


def renamed(n: int) -> list[EventEnvelope]:
    """User `g<n>` created, then renamed."""
    return stream(f"user-g{n}", [UserCreated(email=f"g{n}@x.io", name=f"g{n}"),
                                 UserNameChanged(name=f"g{n}-renamed")])


class Rounds(threading.Thread):
    """Users created then renamed, PER_ROUND per transaction, about five rounds a second, until
    `stop`; `users` is how many were produced."""

    def __init__(self, env: Setup, first: int = 0) -> None:
        super().__init__(daemon=True)
        self.env = env
        self.users = first
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            events = [e for n in range(self.users, self.users + PER_ROUND) for e in renamed(n)]
            produce(self.env.kafka_config, self.env.events, events, PARTITIONS,
                    transactional=True)
            self.users += PER_ROUND
            time.sleep(0.2)

    def stop(self) -> int:
        self.stopping.set()
        self.join(30)
        return self.users


def _last_offsets(env: Setup) -> dict[int, int]:
    """Each partition's last record offset, from the records a read_committed consumer reads."""
    consumer = Consumer({**env.kafka_config, "group.id": f"{env.prefix}check",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    last: dict[int, int] = {}
    try:
        consumer.assign([TopicPartition(env.events, p, 0) for p in range(PARTITIONS)])
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 3:
            for message in consumer.consume(500, 0.5):
                if message.error() is None:
                    last[message.partition()] = message.offset()
                    idle_since = time.monotonic()
    finally:
        consumer.close()
    return last


def _committed(env: Setup) -> dict[int, int]:
    consumer = Consumer({**env.kafka_config, "group.id": f"{env.prefix}projector.postgres"})
    try:
        found = consumer.committed([TopicPartition(env.events, p) for p in range(PARTITIONS)],
                                   timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found}


def test_members_joining_and_leaving_lose_and_break_nothing(env: Setup, tmp_path: Path) -> None:
    member_env = {**env.env, "CQRS_PROJECTOR_POSTGRES_METRICS_PORT": "0"}
    backlog = [e for n in range(BACKLOG) for e in renamed(n)]
    for start in range(0, len(backlog), 1000):
        produce(env.kafka_config, env.events, backlog[start:start + 1000], PARTITIONS,
                transactional=True)
    rounds = Rounds(env, first=BACKLOG)
    with running_projector(member_env, tmp_path / "a.log") as first:
        wait_until(lambda: first.totals()["consumed"] > 0, 90, "the first member's batches")
        rounds.start()
        try:
            # The second joins while the first works through the backlog: a rebalance.
            with running_projector(member_env, tmp_path / "b.log") as second:
                wait_until(lambda: second.totals()["consumed"] > 0, 90, "the second's share")
                assert first.stop() == 0  # leaves while events flow: a second rebalance
                time.sleep(2)
                users = rounds.stop()
                wait_until(lambda: env.query(
                    "SELECT count(*) FROM users WHERE version = 2")[0][0] == users, 120,
                    "every user renamed in the read model")
                last = _last_offsets(env)
                wait_until(lambda: _committed(env) == {p: o + 1 for p, o in last.items()},
                           30, "the group's offsets committed past each partition's last event")
                totals = [first.totals(), second.totals()]
                assert second.stop() == 0
        finally:
            rounds.stop()

    rows = env.query("SELECT id, name, version FROM users ORDER BY id")
    assert rows == sorted((f"g{n}", f"g{n}-renamed", 2) for n in range(users))
    checkpoints = dict(env.query(
        "SELECT partition, \"offset\" FROM projection_checkpoints WHERE topic = %s",
        (env.events,)))
    assert checkpoints == last
    assert env.query("SELECT count(*) FROM projection_parked")[0][0] == 0
    for member in totals:
        assert member["dead_lettered"] == member["parked"] == 0
        assert member["consumed"] == member["applied"] + member["skipped"]
    # Every event applied once, by one member or the other (one read twice after a rebalance
    # is skipped by the version guard).
    assert sum(member["applied"] for member in totals) == 2 * users
