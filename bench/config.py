"""`BenchConfig`: the services the benchmark measures against, handed down by `cqrs bench`."""

from __future__ import annotations

from dataclasses import dataclass

from projections.config import PostgresConfig, SearchConfig
from topics import KafkaConnection


@dataclass(frozen=True)
class BenchConfig:
    """Kafka, PostgreSQL (a DSN allowed to create databases) and Elasticsearch, and the
    partitions and replication of each stage's topics. Built by the composition root
    (`cqrs.bootstrap`) from the settings; the bench never reads the environment for them."""

    kafka: KafkaConnection
    postgres: PostgresConfig
    search: SearchConfig
    partitions: int = 6
    replication_factor: int = 1
