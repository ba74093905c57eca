"""The processor's composition root: the real (confluent-kafka) ports from a `ProcessorConfig`,
and the HTTP endpoints (metrics, liveness, readiness) of a processor."""

from __future__ import annotations

from functools import partial

from pipeline.processor import heap
from pipeline.processor.adapters import (
    KafkaCommandSource,
    KafkaPartitionReader,
    KafkaSnapshotTail,
)
from pipeline.processor.config import ProcessorConfig
from pipeline.processor.loop import Clock, Processor, utc_now
from pipeline.processor.ports import ProcessorPorts
from pipeline.processor.replica import CustomerReplica
from pipeline.processor.topology import partition_count
from pipeline.processor.transactions import TransactionalProducer


def kafka_ports(config: ProcessorConfig) -> ProcessorPorts:
    """The ports on Kafka. Nothing connects before `Processor.run` uses them."""
    topics = config.topics
    return ProcessorPorts(
        commands=KafkaCommandSource(config.command_consumer(), topics.commands),
        producer_factory=TransactionalProducer,
        reader=KafkaPartitionReader(config.reader("restore")),
        replica=CustomerReplica(KafkaSnapshotTail(config.reader("replica"), topics.aggregates)),
        partition_count=partial(partition_count, config.kafka, topics),
    )


def kafka_processor(config: ProcessorConfig, clock: Clock = utc_now) -> Processor:
    """A processor on Kafka (what `cqrs processor` runs), with the garbage collector of the
    process it runs in tuned for it (`heap.tune`)."""
    heap.tune(config.gc_young_threshold)
    return Processor(config, kafka_ports(config), clock)

