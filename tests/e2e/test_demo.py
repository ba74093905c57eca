"""`cqrs demo` plays the seed's scenario through the real pipeline and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from psycopg import sql

from projections.postgres.schema import schema_for_prefix
from tests.support.services import Endpoints, resolve_endpoints


@pytest.fixture(scope="module")
def endpoints() -> Endpoints:
    with resolve_endpoints() as found:
        return found


def test_demo_passes_every_step_on_a_fresh_namespace(endpoints: Endpoints) -> None:
    prefix = f"demo-{uuid.uuid4().hex[:8]}."
    env = {
        **os.environ,
        "CQRS_TOPIC_PREFIX": prefix,
        "CQRS_PARTITIONS": "3",
        "CQRS_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
        "CQRS_PG_DSN": endpoints.pg_dsn,
        "CQRS_ES_URL": endpoints.es_url,
        "COLUMNS": "200",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cqrs", "demo"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )
    finally:
        admin = AdminClient({"bootstrap.servers": endpoints.kafka_bootstrap})
        mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        if mine:
            admin.delete_topics(mine)
        # The demo's read models: its prefix's own schema in the shared database.
        with psycopg.connect(endpoints.pg_dsn, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema_for_prefix(prefix))))
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "all 25 steps gave the expected answer" in report
    for step in ("create user Alice Smith", "create user Bob Johnson", "create user Charlie Brown",
                 'search "alice"', 'search "alice" after the update', "user statistics",
                 "create an existing user is rejected", "orders of bob",
                 "the process manager cancels Charlie's open order", "forget Bob",
                 "Bob is gone from PostgreSQL and the search index",
                 "Bob's paid order keeps its money, not its customer",
                 "Bob's id cannot be used again"):
        assert f"ok   {step}" in report, report
    for worker in ("processor", "projector.postgres", "projector.search"):
        assert f"{worker}: started" in report
        assert f"{worker}: stopped" in report
