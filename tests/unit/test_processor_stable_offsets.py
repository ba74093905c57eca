"""An assignment waits for stable committed offsets before it restores (stalled zombies).

The in-memory broker keeps no pending transactional offsets (a stale member's transaction is
refused at commit instead, see `memory`), so the wait itself is the integration test's
(tests/integration/test_processor_zombie.py); here: its order, its bound, its metric, that a
wait that times out decides nothing, and that the Kafka adapter takes no partition's error for a
stable offset.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from pipeline.processor import Processor, ProcessorConfig, TopicNames
from pipeline.processor.adapters import KafkaCommandSource
from pipeline.processor.config import STABLE_OFFSETS_MARGIN_S
from pipeline.processor.memory import MemoryBroker
from pipeline.processor.memory_readers import MemoryCommandSource, MemoryPartitionReader
from pipeline.processor.records import InboundRecord

TOPICS = TopicNames("c", "e", "a", "r", "dlq")
CONFIG = ProcessorConfig(kafka={}, topics=TOPICS, prefix="t.", instance_id="t", batch_ms=1)


class TimedOut(Exception):
    """What the Kafka adapter raises when offsets stay unstable past the timeout."""


class Fetching(MemoryCommandSource):
    """The group's consumer, noting each offset fetch's timeout; `unstable` makes them fail."""

    def __init__(self, broker: MemoryBroker) -> None:
        super().__init__(broker, TOPICS.commands)
        self.timeouts: list[float] = []
        self.unstable = False

    def committed(
        self, partitions: list[int], timeout_s: float = 30.0
    ) -> dict[int, int | None]:
        self.timeouts.append(timeout_s)
        if self.unstable:
            raise TimedOut("offsets unstable")
        return super().committed(partitions, timeout_s)


class Reading(MemoryPartitionReader):
    """The restore's reader, noting which offset fetches came before each read."""

    def __init__(self, broker: MemoryBroker) -> None:
        super().__init__(broker)
        self.fetched_before: list[tuple[str, list[int], list[list[int]]]] = []

    def read(self, topic: str, partitions: list[int], timeout_s: float) -> Iterator[InboundRecord]:
        self.fetched_before.append((topic, partitions, list(self._broker.offset_fetches)))
        return super().read(topic, partitions, timeout_s)


def processor(broker: MemoryBroker) -> tuple[Processor, Fetching, Reading]:
    commands, reader = Fetching(broker), Reading(broker)
    ports = dataclasses.replace(broker.ports(CONFIG), commands=commands, reader=reader)
    return Processor(CONFIG, ports), commands, reader


def create(i: int) -> bytes:
    return json.dumps({
        "command_id": f"c{i}", "type": "CreateUser", "aggregate_id": f"u{i}",
        "data": {"email": f"u{i}@example.com", "name": f"User {i}"},
        "issued_at": "2024-05-01T00:00:00Z",
    }).encode()


def test_an_assignment_fetches_stable_offsets_before_it_restores() -> None:
    broker = MemoryBroker.for_config(CONFIG, 2)
    first, commands, reader = processor(broker)
    first.start()
    first.step()
    assert reader.fetched_before == [("a", [0, 1], [[0, 1]])]
    assert commands.timeouts == [CONFIG.stable_offsets_timeout_s]
    assert CONFIG.stable_offsets_timeout_s == 10 + STABLE_OFFSETS_MARGIN_S

    second, _, joined = processor(broker)
    second.start()  # joins: a rebalance deals one partition to each
    first.step()
    second.step()
    # Cooperative: the first keeps partition 0 (no wait, no restore), the second gets 1.
    assert reader.fetched_before == [("a", [0, 1], [[0, 1]])]
    assert joined.fetched_before == [("a", [1], [[0, 1], [1]])]
    count = "cqrs_processor_stable_offsets_wait_seconds_count"
    assert first.metrics.registry.get_sample_value(count, {"prefix": "t."}) == 1
    assert second.metrics.registry.get_sample_value(count, {"prefix": "t."}) == 1


def test_offsets_that_stay_unstable_decide_nothing() -> None:
    broker = MemoryBroker.for_config(CONFIG, 1)
    broker.append("c", 0, b"user-u1", create(1))
    stuck, commands, reader = processor(broker)
    commands.unstable = True
    stuck.start()
    with pytest.raises(TimedOut):
        stuck.step()
    assert reader.fetched_before == []
    assert broker.records("e") == []
    assert broker.committed("c", 0) is None


@dataclasses.dataclass
class Answered:
    """A `TopicPartition` of an OffsetFetch answer, as confluent-kafka hands it back."""

    partition: int
    offset: int
    error: KafkaError | None = None


class AnsweringConsumer:
    """Answers `answers` in turn (the last one again and again)."""

    def __init__(self, *answers: list[Answered]) -> None:
        self.answers = list(answers)
        self.asked = 0

    def committed(self, partitions: list[Any], timeout: float) -> list[Answered]:
        self.asked += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_an_error_left_on_one_partition_of_the_answer_is_no_answer() -> None:
    """confluent-kafka raises for a failed request, but hands per-partition errors back on each
    `TopicPartition`: UNSTABLE_OFFSET_COMMIT there is no stable offset, asked again until the
    bound, then raised; an error no later answer changes is raised at once."""
    source = KafkaCommandSource({}, "c")
    unstable = [Answered(0, 12), Answered(1, -1001, KafkaError(KafkaError.UNSTABLE_OFFSET_COMMIT))]
    source._consumer = AnsweringConsumer(unstable)
    with pytest.raises(KafkaException) as raised:
        source.committed([0, 1], timeout_s=0.3)
    assert raised.value.args[0].code() == KafkaError.UNSTABLE_OFFSET_COMMIT
    refused = [Answered(0, -1001, KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))]
    source._consumer = consumer = AnsweringConsumer(refused)
    with pytest.raises(KafkaException):
        source.committed([0], timeout_s=5)
    assert consumer.asked == 1
    source._consumer = AnsweringConsumer([Answered(0, 12), Answered(1, -1001)])
    assert source.committed([0, 1]) == {0: 12, 1: None}


def test_a_coordinator_moving_is_asked_again() -> None:
    source = KafkaCommandSource({}, "c")
    moving = [Answered(0, -1001, KafkaError(KafkaError.NOT_COORDINATOR))]
    source._consumer = consumer = AnsweringConsumer(moving, moving, [Answered(0, 7)])
    assert source.committed([0], timeout_s=5) == {0: 7}
    assert consumer.asked == 3
