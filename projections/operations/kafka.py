"""`KafkaOps`: the Kafka side of the operations tools (groups, watermarks, offsets, peeks).

Synchronous (confluent-kafka's AdminClient and an assign-only consumer that never commits); every
call is bounded by `timeout` seconds. Nothing here writes records except `produce`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from projections.operations.errors import OperationsError

Watermarks = dict[int, tuple[int, int]]
"""Partition → (low, high) watermark offsets."""


class KafkaOps:
    """Read-mostly access to one cluster for `replay`, `lag` and `dlq`."""

    def __init__(self, config: Mapping[str, Any], timeout: float = 10.0) -> None:
        self._config = dict(config)
        self._timeout = timeout
        self._admin = AdminClient(self._config)
        self._consumer: Consumer | None = None

    def _reader(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer({
                **self._config, "group.id": f"cqrs-ops-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False, "enable.partition.eof": True,
                "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
        return self._consumer

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def partitions(self, topic: str) -> list[int]:
        found = self._admin.list_topics(topic, timeout=self._timeout).topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise OperationsError(f"topic {topic!r} does not exist (run `cqrs topics apply`)")
        return sorted(found.partitions)

    def watermarks(self, topic: str) -> Watermarks:
        reader = self._reader()
        return {partition: reader.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=self._timeout, cached=False)
                for partition in self.partitions(topic)}

    def active_members(self, group: str) -> int:
        """Members of consumer group `group` now (0 for an empty or unknown group)."""
        future = self._admin.describe_consumer_groups([group])[group]
        try:
            description = future.result(timeout=self._timeout)
        except KafkaException as error:
            if error.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND:
                return 0
            raise
        return len(description.members)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """The group's committed offsets (next offset to read) on `topic`; absent if none."""
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(topic, p) for p in self.partitions(topic)])
        future = self._admin.list_consumer_group_offsets([request])[group]
        answer = future.result(timeout=self._timeout)
        return {tp.partition: tp.offset for tp in answer.topic_partitions if tp.offset >= 0}

    def commit_group(self, group: str, topic: str, next_offsets: Mapping[int, int]) -> None:
        """Set `group`'s committed offsets; the broker refuses while the group has members."""
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(topic, p, o) for p, o in sorted(next_offsets.items())])
        answer = self._admin.alter_consumer_group_offsets([request])[group].result(
            timeout=self._timeout)
        for tp in answer.topic_partitions:
            if tp.error is not None:
                raise OperationsError(f"committing {group} {topic}[{tp.partition}]: {tp.error}")

    def offsets_for_time(self, topic: str, millis: int, partitions: list[int]) -> dict[int, int]:
        """First offset at or after `millis` per partition (the high watermark if none is)."""
        wanted = [TopicPartition(topic, p, millis) for p in partitions]
        found = self._reader().offsets_for_times(wanted, timeout=self._timeout)
        marks = self.watermarks(topic)
        return {tp.partition: tp.offset if tp.offset >= 0 else marks[tp.partition][1]
                for tp in found}

    def has_records_from(self, topic: str, partition: int, offset: int) -> bool:
        """Is there a committed record at or after `offset`? (Transaction markers take offsets
        too, so `high - next` overstates what a read_committed reader has left.)"""
        for _ in self.read(topic, partition, offset, limit=1):
            return True
        return False

    def read(self, topic: str, partition: int, start: int | None = None,
             limit: int | None = None) -> Iterator[Message]:
        """Committed records of one partition from `start` (the beginning if `None`) to the end
        as of now, at most `limit`."""
        reader = self._reader()
        low, high = reader.get_watermark_offsets(TopicPartition(topic, partition),
                                                 timeout=self._timeout, cached=False)
        begin = OFFSET_BEGINNING if start is None else max(start, low)
        if begin != OFFSET_BEGINNING and begin >= high:
            return
        reader.assign([TopicPartition(topic, partition, begin)])
        count = 0
        try:
            while limit is None or count < limit:
                message = reader.poll(self._timeout)
                if message is None:
                    raise OperationsError(f"no answer reading {topic}[{partition}]")
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return
                    raise OperationsError(f"reading {topic}[{partition}]: {error}")
                count += 1
                yield message
                if (message.offset() or 0) + 1 >= high:
                    return
        finally:
            reader.unassign()

    def produce(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
                headers: list[tuple[str, bytes]]) -> None:
        """One record, durably (acks=all, idempotent producer)."""
        producer = Producer({**self._config, "enable.idempotence": True})
        outgoing: list[tuple[str, str | bytes | None]] = list(headers)
        producer.produce(topic, key=key, value=value, partition=partition, headers=outgoing)
        if producer.flush(self._timeout) != 0:
            raise OperationsError(f"could not produce to {topic}[{partition}] in time")
