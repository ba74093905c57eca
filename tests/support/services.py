"""Test-side resolution of the real services (testcontainers, or addresses from the environment)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

HOW_TO_START = (
    "The integration tests need real Kafka, PostgreSQL and Elasticsearch, and found neither a "
    "Docker engine nor CQRS_KAFKA_BOOTSTRAP / CQRS_PG_DSN / CQRS_ES_URL. Start the native "
    'services with:  cqrs services up && eval "$(cqrs services env)"  and run pytest again.'
)


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    pg_dsn: str
    es_url: str


def _from_env() -> Endpoints | None:
    names = ("CQRS_KAFKA_BOOTSTRAP", "CQRS_PG_DSN", "CQRS_ES_URL")
    if not all(os.environ.get(name) for name in names):
        return None
    return Endpoints(*(os.environ[name] for name in names))


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=10)
    return probe.returncode == 0


@contextlib.contextmanager
def _containers() -> Iterator[Endpoints]:
    from testcontainers.elasticsearch import ElasticSearchContainer
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    from cqrs.services.layout import ELASTICSEARCH_VERSION, KAFKA_VERSION, POSTGRES_MAJOR

    kafka = KafkaContainer(f"apache/kafka:{KAFKA_VERSION}").with_kraft()
    postgres = PostgresContainer(f"postgres:{POSTGRES_MAJOR}", driver=None)
    search = ElasticSearchContainer(
        f"docker.elastic.co/elasticsearch/elasticsearch:{ELASTICSEARCH_VERSION}", mem_limit="1G"
    ).with_env("xpack.security.enabled", "false")
    with kafka, postgres, search:
        yield Endpoints(
            kafka_bootstrap=kafka.get_bootstrap_server(),
            pg_dsn=postgres.get_connection_url(),
            es_url=search.get_url(),
        )


@contextlib.contextmanager
def resolve_endpoints() -> Iterator[Endpoints]:
    """Environment first (explicit wins), then testcontainers, else fail with how to start."""
    found = _from_env()
    if found is not None:
        yield found
    elif _docker_answers():
        with _containers() as started:
            yield started
    else:
        pytest.fail(HOW_TO_START, pytrace=False)
