"""The events topic read directly: assigned partitions, read_committed, no consumer group.

Nothing is committed to Kafka and no group is joined, so the live projector's group and lag are
untouched. Positions are "next offset to read", as Kafka's end offsets are; a partition is caught
up to a target when its position reaches it. Under read_committed the last offsets of a partition
may be transaction markers that are never delivered, so the end-of-partition event (which reports
the offset the consumer stopped at) also moves the position.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from projections.runtime.records import SourceRecord

FILL_WAIT = 0.05
"""Seconds to wait for more records once a read has some."""


class EventSource:
    """One consumer over every partition of `topic`; not thread-safe."""

    def __init__(self, kafka_config: Mapping[str, Any], topic: str, timeout: float = 10.0) -> None:
        self.topic = topic
        self._timeout = timeout
        self._consumer = Consumer({
            **kafka_config,
            # Required by the client, never joined (assign) and never committed.
            "group.id": f"rebuild-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 52_428_800,
            "max.partition.fetch.bytes": 10_485_760,
        })
        metadata = self._consumer.list_topics(topic, timeout=timeout).topics[topic]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        self.partitions = sorted(metadata.partitions)

    def end_offsets(self) -> dict[int, int]:
        """Partition → its end offset now (the high watermark)."""
        return {partition: high for partition, (_, high) in self._watermarks().items()}

    def first_offsets(self) -> dict[int, int]:
        """Partition → its first offset still kept (the low watermark)."""
        return {partition: low for partition, (low, _) in self._watermarks().items()}

    def _watermarks(self) -> dict[int, tuple[int, int]]:
        found: dict[int, tuple[int, int]] = {}
        for partition in self.partitions:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=self._timeout, cached=False)
            found[partition] = (int(low), int(high))
        return found

    def offsets_after(self, moment: datetime) -> dict[int, int]:
        """Partition → the first offset stamped after `moment` (the end offset if none is)."""
        millis = int(moment.timestamp() * 1000) + 1
        wanted = [TopicPartition(self.topic, p, millis) for p in self.partitions]
        found = self._consumer.offsets_for_times(wanted, timeout=self._timeout)
        ends = self.end_offsets()
        return {tp.partition: (tp.offset if tp.offset >= 0 else ends[tp.partition])
                for tp in found}

    def assign(self, start: Mapping[int, int]) -> None:
        """Read every partition from `start[p]` (absent: from the beginning)."""
        self._consumer.assign([TopicPartition(self.topic, p, start.get(p, OFFSET_BEGINNING))
                               for p in self.partitions])

    def read(self, size: int, timeout: float) -> tuple[list[SourceRecord], dict[int, int]]:
        """Up to `size` records (waiting up to `timeout` for the first), and partition → offset
        of each end of partition reached. Keeps reading while records come, for big batches."""
        records: list[SourceRecord] = []
        ends: dict[int, int] = {}
        wait = timeout
        while len(records) < size:
            messages: list[Any] = self._consumer.consume(num_messages=size - len(records),
                                                         timeout=wait)
            if not self._take(messages, records, ends) or ends:
                break
            wait = FILL_WAIT
        return records, ends

    def _take(self, messages: list[Any], records: list[SourceRecord],
              ends: dict[int, int]) -> int:
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    ends[message.partition()] = message.offset()
                    continue
                raise KafkaException(error)
            headers = tuple((name, bytes(value or b"")) for name, value in
                            (message.headers() or ()))
            records.append(SourceRecord(message.topic(), message.partition(), message.offset(),
                                        message.key(), message.value(), headers))
        return len(messages)

    def close(self) -> None:
        self._consumer.close()
