"""The processor's composition root: the real (confluent-kafka) ports from a `ProcessorConfig`,
and the HTTP endpoints (metrics, liveness, readiness) of a processor."""

from __future__ import annotations

from functools import partial

from observability import HealthServer, serve
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
    """A processor on Kafka (what `cqrs processor` runs)."""
    return Processor(config, kafka_ports(config), clock)


ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (scraped from other hosts and containers)


def serve_health(processor: Processor, port: int, host: str = ALL_INTERFACES) -> HealthServer:
    """`/metrics`, `/livez` and `/readyz` of `processor` on `port` (0: any free port), served
    from a thread until `close` (`observability.serve`). Raises `OSError` when the port cannot
    be bound."""
    return serve(port, processor.metrics.registry, processor.health, host)

