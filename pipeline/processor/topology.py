"""The partition layout the processor relies on, read from the broker's metadata."""

from __future__ import annotations

from typing import Any

from confluent_kafka.admin import AdminClient

from pipeline.processor.config import TopicNames


class TopologyError(Exception):
    """The topics are missing or their partition counts disagree (events must match commands)."""


def partition_count(kafka: dict[str, Any], topics: TopicNames, timeout_s: float = 30) -> int:
    """The commands topic's partition count, checked equal for events, aggregates and results."""
    metadata = AdminClient(kafka).list_topics(timeout=timeout_s)
    counts: dict[str, int] = {}
    for name in (topics.commands, topics.events, topics.aggregates, topics.command_results):
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None or not topic.partitions:
            raise TopologyError(f"topic {name!r} does not exist (run `apply` first)")
        counts[name] = len(topic.partitions)
    if len(set(counts.values())) != 1:
        raise TopologyError(f"partition counts differ: {counts}")
    return counts[topics.commands]
