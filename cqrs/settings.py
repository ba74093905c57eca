"""Connection settings, read from the environment once per entry point (prefix ``CQRS_``)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cqrs.metrics_ports import PROCESSOR, PROJECTOR_POSTGRES, PROJECTOR_SEARCH
from cqrs.services.credentials import Role, RoleFiles, check_private
from cqrs.services.layout import Layout
from pipeline.processor.config import ProcessorConfig
from projections.config import DEFAULT_REFRESH_INTERVAL, refresh_interval_ms
from projections.postgres.schema import check_schema

COMPOSE_PG_DSN = "postgresql://cqrs:cqrs@127.0.0.1:5432/cqrs"


def default_pg_dsn() -> str:
    """The native PostgreSQL's DSN (with the password `cqrs services up` generated) when this
    user can read that password, else docker compose's fixed one. With credentials per role
    (secure services, `CQRS_CREDENTIALS_DIR`/`_FILE`), a role whose file gives no DSN has no
    business in PostgreSQL: it gets one without credentials, which the server refuses, and never
    the owner's."""
    layout = Layout.from_env()
    if layout.secure or os.environ.get("CQRS_CREDENTIALS_DIR") or os.environ.get(
            "CQRS_CREDENTIALS_FILE"):
        return (f"postgresql://{layout.host}:{layout.postgres_port}/cqrs"
                f"?sslmode=verify-full&sslrootcert={layout.ca_file}")
    if os.access(layout.postgres_password_file, os.R_OK):
        return layout.postgres_dsn
    return COMPOSE_PG_DSN


class Settings(BaseSettings):
    """Where the services are and how the topics are named.

    Every field can be set with an environment variable ``CQRS_<FIELD>`` (for example
    ``CQRS_KAFKA_BOOTSTRAP``); ``cqrs services env`` prints the values for the native services.
    Secure transports are plain settings: ``kafka_security_protocol``/``kafka_sasl_*`` for Kafka,
    credentials inside ``pg_dsn``, and ``es_api_key`` (or ``es_username``/``es_password``) for
    the databases.
    Without ``CQRS_PG_DSN``, ``pg_dsn`` is the native services' (see ``default_pg_dsn``).
    Read once per entry point, by `cqrs.bootstrap.Bootstrap`, which turns them into the narrow
    configs the packages take (`cqrs.config.Config`).
    """

    model_config = SettingsConfigDict(env_prefix="CQRS_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = Field(default=None, repr=False)
    kafka_ssl_ca_location: str | None = None
    pg_dsn: str = Field(default_factory=default_pg_dsn, repr=False)
    pg_schema: str | None = None
    """The PostgreSQL schema of this deployment's read models. Unset: derived from
    ``topic_prefix`` (``cqrs.`` → ``cqrs``, ``test-ab12.`` → ``test_ab12``; see
    `projections.postgres.schema`). Set ``public`` to keep a deployment that lived there."""
    es_url: str = "http://127.0.0.1:9200"
    es_api_key: str | None = Field(default=None, repr=False)
    """An Elasticsearch API key (encoded, as `_security/api_key` returns it), for a cluster
    that gives its roles keys; set, it wins over ``es_username``. The local secure services
    give users instead (`cqrs.services.elasticsearch_realm` says why)."""
    es_username: str | None = None
    """A user to authenticate to Elasticsearch as (basic auth, with ``es_password``): on the
    secure services each role's file holds its own (`elastic` for the admin)."""
    es_password: str | None = Field(default=None, repr=False)
    es_ca_certs: str | None = None
    """The CA (PEM) that Elasticsearch's HTTPS certificate is verified with (default: the
    system's)."""
    credentials_dir: Path | None = None
    """Where each role's credentials file is (`<dir>/<role>.env`, mode 0600): every entry point
    reads its own role's (`for_role`). `cqrs services env` sets it for secure services."""
    credentials_file: Path | None = None
    """One credentials file for whatever runs here (a deployment running one role per host or
    container): read instead of `credentials_dir`'s."""
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
    processor_transaction_timeout_ms: int = Field(
        default=ProcessorConfig.transaction_timeout_ms, ge=1000, le=900_000)
    """The processor's `transaction.timeout.ms`, also its records' `message.timeout.ms`: how long
    a batch's records may wait for a partition leader before the batch is aborted and decided
    again. On a replicated cluster size it above a failover (30000: docs/operations.md, "Running
    it on a cluster"); an open transaction of a processor that stalls holds read_committed
    readers of its partitions that long. At most the brokers' `transaction.max.timeout.ms`."""
    processor_restore_timeout_s: float = Field(
        default=ProcessorConfig.restore_timeout_s, gt=0, le=3600)
    """Longest read of an assignment's stream states (and of the replica's partitions): past it
    the processor exits non-zero, nothing decided, and its supervisor restarts it. A restore
    reads about 14,000-20,000 streams a second here (docs/performance.md, "Processor state");
    size it above the streams of the partitions one instance may take at once (the first member
    of a group, or the last one left, takes them all)."""
    processor_max_resident_streams: int | None = Field(default=None, ge=1)
    """At most this many stream states in the processor's memory, the least recently used of the
    others in a local file it reads them back from on demand (docs/processor.md, "Bounded
    memory"). Unset: every stream of the owned partitions in memory."""
    processor_spill_dir: Path | None = None
    """Where a bounded processor keeps its spill file (the system's temporary directory by
    default; put it on a disk, not a tmpfs, for the bound to save memory)."""
    gateway_keys_file: Path | None = None
    """The gateway's API keys (`cqrs gateway keys add`; docs/gateway.md). Set: command routes
    need a key of scope ``commands``. Unset: the gateway is open, and refuses to listen on
    anything but a loopback address unless told ``--allow-unauthenticated``."""
    gateway_queries_need_key: bool = False
    """With a keys file: query routes need a key too (any scope)."""
    gateway_tls_cert: Path | None = None
    """The gateway's TLS certificate chain (PEM); with ``gateway_tls_key``, it serves HTTPS."""
    gateway_tls_key: Path | None = None
    """The private key of ``gateway_tls_cert`` (PEM)."""

    @classmethod
    def for_role(cls, role: Role | None) -> Settings:
        """The environment's settings, with `role`'s credentials file under them (a variable
        set in the environment wins over the file; None: no credentials read). Raises
        `CredentialsError` for a file that is missing or that others may read."""
        settings = cls()
        if role is None:
            return settings
        path = settings.credentials_file or (
            RoleFiles(settings.credentials_dir).path(role) if settings.credentials_dir else None)
        if path is None:
            return settings
        check_private(path)
        return cls(_env_file=path)

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
