"""A steady command load on a cluster and the arrival times of its results, for failover tests.

`Load` sends commands at `RATE` per second between `resume` and `pause`, over `STREAMS` user
streams: each stream's first command creates it, every later one renames it. `Results` reads
`<p>command-results` as they arrive, so a test can tell the longest wait for the next answer.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from itertools import pairwise
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from tests.support.processor import command, stream_of
from topics import decode_result, partition_for

STREAMS = 300
RATE = 60
"""Commands per second (2 shared cores run three brokers, the workers and the test)."""


class Load(threading.Thread):
    """Sends commands at `RATE` while resumed: each stream's first command creates its
    user, every later one renames it (a new name each time, so each is accepted with one event).
    Acks=all and idempotent, with a delivery timeout longer than any failover here."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.partitions = partitions
        self.sent: dict[str, str] = {}
        self.failures: list[str] = []
        self.flowing = threading.Event()
        self._idle = threading.Event()
        self.stopping = threading.Event()
        self._next = 0
        self._producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                   "enable.idempotence": True, "linger.ms": 5,
                                   "delivery.timeout.ms": 300_000, "log_level": 0})

    def _command(self) -> dict[str, Any]:
        number, self._next = self._next, self._next + 1
        user, round_ = f"f{number % STREAMS:03d}", number // STREAMS
        if round_ == 0:
            return command("CreateUser", user, {"email": f"{user}@example.com",
                                                "name": f"User {user}"})
        return command("UpdateUser", user, {"name": f"User {user} {round_}"})

    def resume(self) -> None:
        self._idle.clear()
        self.flowing.set()

    def pause(self) -> set[str]:
        """Stop sending (the tick under way ends first); the ids of every command sent so far."""
        self.flowing.clear()
        assert self._idle.wait(10), "the load did not pause"
        return set(self.sent)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failures.append(str(error))

    def run(self) -> None:
        tick = 0.1
        while not self.stopping.is_set():
            if not self.flowing.is_set():
                self._idle.set()
                self._producer.poll(0.1)
                continue
            started = time.monotonic()
            for _ in range(int(RATE * tick)):
                document = self._command()
                stream_id = stream_of(document)
                self._producer.produce(self.topic, json.dumps(document).encode(),
                                       stream_id.encode(),
                                       partition=partition_for(stream_id, self.partitions),
                                       on_delivery=self._on_delivery)
                self.sent[document["command_id"]] = stream_id
            while (left := tick - (time.monotonic() - started)) > 0:
                self._producer.poll(left)  # returns early once it served a callback
        self._producer.flush(300)


class Results(threading.Thread):
    """Reads `<p>command-results` (read_committed) as results arrive, with the arrival time."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        super().__init__(daemon=True)
        self.partitions = partitions
        self.arrivals: list[tuple[float, str]] = []
        self.stopping = threading.Event()
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "log_level": 0,
                                   "group.id": f"results-{uuid.uuid4().hex}",
                                   "isolation.level": "read_committed",
                                   "enable.auto.commit": False})
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                               for p in range(self.partitions)])

    def run(self) -> None:
        while not self.stopping.is_set():
            for message in self._consumer.consume(500, 0.1):
                if message.error() is None:
                    result = decode_result(message.value() or b"")
                    self.arrivals.append((time.monotonic(), result.command_id))
        self._consumer.close()

    def answered(self) -> set[str]:
        return {command_id for _, command_id in self.arrivals}

    def longest_gap(self, since: float, until: float | None = None) -> float:
        """The longest wait for the next result from `since` on (a fault's start), up to the
        first result at or after `until` (the next fault's start; by default the last one)."""
        arrivals = sorted(at for at, _ in self.arrivals if at >= since)
        if until is not None:
            later = [at for at in arrivals if at >= until]
            arrivals = [at for at in arrivals if at < until] + later[:1]
        times = [since, *arrivals]
        return max((later - earlier for earlier, later in pairwise(times)), default=0.0)
