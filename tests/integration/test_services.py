"""Each real service answers."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from psycopg.conninfo import conninfo_to_dict


def test_kafka_lists_topics(kafka_config: dict[str, str]) -> None:
    metadata = AdminClient(kafka_config).list_topics(timeout=10)
    assert metadata.brokers, "the broker reported no brokers"


def test_postgres_runs_a_query(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute("SELECT current_database(), 1 + 1").fetchone()
    assert row is not None
    assert row[1] == 2


def test_postgres_refuses_a_connection_without_the_password(pg_dsn: str) -> None:
    parts = conninfo_to_dict(pg_dsn)
    parts.update(password="", passfile="/dev/null", connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(**parts)  # type: ignore[arg-type]


def test_elasticsearch_is_healthy(es_url: str) -> None:
    health = httpx.get(f"{es_url}/_cluster/health", timeout=10).json()
    assert health["status"] in ("green", "yellow")
