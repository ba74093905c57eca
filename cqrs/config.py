"""`Config`: the settings, read once, as the narrow configs each side is built from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.config import BenchConfig
from cqrs.metrics_ports import PROCESSOR, PROJECTOR_POSTGRES, PROJECTOR_SEARCH
from cqrs.settings import Settings
from pipeline.processor import ProcessorConfig, TopicNames
from projections.config import PostgresConfig, ProjectionsConfig, SearchConfig
from topics import Catalogue, KafkaConnection


@dataclass(frozen=True)
class Config:
    """Kafka (connection and topic catalogue), PostgreSQL and Elasticsearch.

    The one translation from `Settings` (environment variables) to what the packages take:
    `pipeline` gets a `ProcessorConfig` (`processor`), `projections` a
    `ProjectionsConfig`, `bench` a `BenchConfig`. Raises `InvalidTopicName` for an illegal prefix.
    """

    kafka: KafkaConnection
    catalogue: Catalogue
    postgres: PostgresConfig
    search: SearchConfig
    projector_metrics_ports: Mapping[str, int] = field(
        default_factory=lambda: {"postgres": PROJECTOR_POSTGRES, "search": PROJECTOR_SEARCH})
    """Projector name → where `cqrs project <name>` serves `/metrics`, `/livez`, `/readyz`
    (0 or absent: nowhere)."""
    processor_metrics_port: int = PROCESSOR
    """Where `cqrs processor` serves `/metrics`, `/livez`, `/readyz` (0: nowhere)."""
    processor_transaction_timeout_ms: int = ProcessorConfig.transaction_timeout_ms
    """The processor's `transaction.timeout.ms` (`Settings.processor_transaction_timeout_ms`)."""
    processor_restore_timeout_s: float = ProcessorConfig.restore_timeout_s
    """The processor's longest restore (`Settings.processor_restore_timeout_s`)."""
    processor_max_resident_streams: int | None = None
    """The processor's bound on states in memory (`Settings.processor_max_resident_streams`)."""
    processor_spill_dir: Path | None = None
    """Where a bounded processor spills (`Settings.processor_spill_dir`)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Config:
        kafka = KafkaConnection(
            bootstrap=settings.kafka_bootstrap,
            security_protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password,
            ssl_ca_location=settings.kafka_ssl_ca_location,
        )
        catalogue = Catalogue(prefix=settings.topic_prefix, partitions=settings.partitions,
                              replication_factor=settings.replication_factor)
        postgres = PostgresConfig.for_prefix(settings.pg_dsn, settings.topic_prefix,
                                             settings.pg_schema)
        return cls(kafka, catalogue, postgres,
                   SearchConfig(settings.es_url, settings.es_api_key,
                                settings.search_refresh_interval,
                                username=settings.es_username, password=settings.es_password,
                                ca_certs=settings.es_ca_certs),
                   projector_metrics_ports={
                       "postgres": settings.projector_postgres_metrics_port,
                       "search": settings.projector_search_metrics_port},
                   processor_metrics_port=settings.processor_metrics_port,
                   processor_transaction_timeout_ms=settings.processor_transaction_timeout_ms,
                   processor_restore_timeout_s=settings.processor_restore_timeout_s,
                   processor_max_resident_streams=settings.processor_max_resident_streams,
                   processor_spill_dir=settings.processor_spill_dir)

    @property
    def prefix(self) -> str:
        return self.catalogue.prefix

    def projections(self) -> ProjectionsConfig:
        return ProjectionsConfig(self.kafka, self.catalogue, self.postgres, self.search)

    def metrics_url(self, process: str, host: str = "127.0.0.1") -> str:
        """Where `cqrs top` scrapes `process` (`processor`, `postgres`, `search`) by default."""
        if process == "processor":
            port = self.processor_metrics_port
        else:
            port = self.projector_metrics_ports[process]
        return f"http://{host}:{port}/metrics"

    def processor(self, instance_id: str, batch_size: int, batch_ms: int) -> ProcessorConfig:
        """One processor process's configuration: the catalogue's topics, this Kafka."""
        catalogue = self.catalogue
        topics = TopicNames(
            commands=catalogue.commands.name,
            events=catalogue.events.name,
            aggregates=catalogue.aggregates.name,
            command_results=catalogue.command_results.name,
            commands_dlq=catalogue.commands_dlq.name,
        )
        return ProcessorConfig(
            kafka=self.kafka.client_config(), topics=topics, prefix=self.prefix,
            instance_id=instance_id, batch_size=batch_size, batch_ms=batch_ms,
            transaction_timeout_ms=self.processor_transaction_timeout_ms,
            restore_timeout_s=self.processor_restore_timeout_s,
            max_resident_streams=self.processor_max_resident_streams,
            spill_dir=self.processor_spill_dir,
        )

    def bench(self) -> BenchConfig:
        return BenchConfig(self.kafka, self.postgres, self.search,
                           partitions=self.catalogue.partitions,
                           replication_factor=self.catalogue.replication_factor)
