"""Connection settings, read from the environment once per entry point (prefix ``CQRS_``)."""

from __future__ import annotations

import os

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cqrs.metrics_ports import PROCESSOR, PROJECTOR_POSTGRES, PROJECTOR_SEARCH
from cqrs.services.layout import Layout
from projections.config import DEFAULT_REFRESH_INTERVAL, refresh_interval_ms
from projections.postgres.schema import check_schema

COMPOSE_PG_DSN = "postgresql://cqrs:cqrs@127.0.0.1:5432/cqrs"


def default_pg_dsn() -> str:
    """The native PostgreSQL's DSN (with the password `cqrs services up` generated) when this
    user can read that password, else docker compose's fixed one."""
    layout = Layout.from_env()
    if os.access(layout.postgres_password_file, os.R_OK):
        return layout.postgres_dsn
    return COMPOSE_PG_DSN


class Settings(BaseSettings):
    """Where the services are and how the topics are named.

    Every field can be set with an environment variable ``CQRS_<FIELD>`` (for example
    ``CQRS_KAFKA_BOOTSTRAP``); ``cqrs services env`` prints the values for the native services.
    Secure transports are plain settings: ``kafka_security_protocol``/``kafka_sasl_*`` for Kafka,
    credentials inside ``pg_dsn`` and ``es_url`` (or ``es_api_key``) for the databases.
    Without ``CQRS_PG_DSN``, ``pg_dsn`` is the native services' (see ``default_pg_dsn``).
    Read once per entry point, by `cqrs.bootstrap.Bootstrap`, which turns them into the narrow
    configs the packages take (`cqrs.config.Config`).
    """

    model_config = SettingsConfigDict(env_prefix="CQRS_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_ca_location: str | None = None
    pg_dsn: str = Field(default_factory=default_pg_dsn)
    pg_schema: str | None = None
    """The PostgreSQL schema of this deployment's read models. Unset: derived from
    ``topic_prefix`` (``cqrs.`` → ``cqrs``, ``test-ab12.`` → ``test_ab12``; see
    `projections.postgres.schema`). Set ``public`` to keep a deployment that lived there."""
    es_url: str = "http://127.0.0.1:9200"
    es_api_key: str | None = None
    search_refresh_interval: str = DEFAULT_REFRESH_INTERVAL
    """`index.refresh_interval` of the users search index (`1s`, `500ms`, `-1`): put on the
    index when it is created or rebuilt, and at the search projector's start if it differs.
    Shorter: documents searchable sooner, more refreshes (segments, merges) per second."""
    topic_prefix: str = "cqrs."
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    """Replicas of every catalogue topic (`cqrs services env` prints 3 for a 3-node cluster);
    their `min.insync.replicas` follows: 2 with 3 or more replicas, else 1."""
    projector_postgres_metrics_port: int = Field(default=PROJECTOR_POSTGRES, ge=0, le=65535)
    """`/metrics`, `/livez`, `/readyz` of `cqrs project postgres` (0: not served)."""
    projector_search_metrics_port: int = Field(default=PROJECTOR_SEARCH, ge=0, le=65535)
    """`/metrics`, `/livez`, `/readyz` of `cqrs project search` (0: not served)."""
    processor_metrics_port: int = Field(default=PROCESSOR, ge=0, le=65535)
    """`/metrics`, `/livez`, `/readyz` of `cqrs processor` (0: not served)."""

    @field_validator("pg_schema")
    @classmethod
    def _live_schema_name(cls, value: str | None) -> str | None:
        return None if value is None else check_schema(value)  # SchemaNameError: a ValueError

    @field_validator("search_refresh_interval")
    @classmethod
    def _elasticsearch_time_value(cls, value: str) -> str:
        refresh_interval_ms(value)  # ValueError: a value Elasticsearch would refuse
        return value

    def metrics_ports(self) -> dict[str, int]:
        """Process (`processor`, `postgres`, `search`) → its metrics port (0: not served)."""
        return {
            "processor": self.processor_metrics_port,
            "postgres": self.projector_postgres_metrics_port,
            "search": self.projector_search_metrics_port,
        }
