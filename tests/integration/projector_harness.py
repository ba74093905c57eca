"""Fixtures' machinery for the postgres projector tests: a database, topics and a projector process
per test (the projector runs as `python -m cqrs project postgres`, as in production)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from elasticsearch import AsyncElasticsearch

from bench.infra import drop_database
from projections.postgres.schema import schema_dsn, schema_for_prefix
from projections.search.index import IndexNames, drop_indices
from tests.support.events import create_topics, delete_topics

PARTITIONS = 3
TOTAL_NAMES = ("consumed", "applied", "skipped", "parked", "dead_lettered")


def log_totals(log: str) -> dict[str, int]:
    """The projector's last logged totals: the `totals` of its last JSON `batch` line
    (`projections.runtime.processor`), zeros before the first batch."""
    found: dict[str, int] = dict.fromkeys(TOTAL_NAMES, 0)
    for line in log.splitlines():
        if not line.startswith("{") or '"batch"' not in line:
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if document.get("event") == "batch" and isinstance(document.get("totals"), dict):
            found = {name: int(document["totals"][name]) for name in TOTAL_NAMES}
    return found


def live_dsn(database_dsn: str, prefix: str) -> str:
    """`database_dsn` in the live schema of topic prefix `prefix`, where its projector writes."""
    return schema_dsn(database_dsn, schema_for_prefix(prefix))


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


@contextmanager
def fresh_database(pg_dsn: str) -> Iterator[tuple[str, str]]:
    """A new database (name, dsn), dropped afterwards, even with connections left."""
    name = f"proj_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name, with_database(pg_dsn, name)
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT -1')
        drop_database(pg_dsn, name)


@dataclass
class Projector:
    """A running `cqrs project postgres` process and what it logs."""

    process: subprocess.Popen[bytes]
    log: Path

    def totals(self) -> dict[str, int]:
        return log_totals(self.log.read_text(errors="replace"))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


@contextmanager
def running_projector(env: dict[str, str], log: Path) -> Iterator[Projector]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cqrs", "project", "postgres"],
            env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    projector = Projector(process, log)
    try:
        yield projector
    finally:
        projector.stop()


@dataclass
class Setup:
    """A test's topics and database; `dsn` is the live schema's (`live_dsn`): what `query`
    reads is what the prefix's projector wrote, never another prefix's rows."""

    prefix: str
    kafka_config: dict[str, str]
    dsn: str
    database: str
    env: dict[str, str]

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}projection.postgres.dlq"

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn) as connection:
            return connection.execute(sql.encode(), params).fetchall()


@contextmanager
def setup(kafka_config: dict[str, str], pg_dsn: str, prefix: str) -> Iterator[Setup]:
    create_topics(kafka_config, [f"{prefix}events", f"{prefix}projection.postgres.dlq"],
                  PARTITIONS)
    try:
        with fresh_database(pg_dsn) as (name, dsn):
            env = {"CQRS_TOPIC_PREFIX": prefix, "CQRS_PG_DSN": dsn,
                   "CQRS_KAFKA_BOOTSTRAP": kafka_config["bootstrap.servers"]}
            yield Setup(prefix, kafka_config, live_dsn(dsn, prefix), name, env)
    finally:
        delete_topics(kafka_config, prefix)


@contextmanager
def both_projectors(kafka_config: dict[str, str], pg_dsn: str, es_url: str,
                    prefix: str) -> Iterator[Setup]:
    """`setup` plus what the search projector needs: its DLQ topic, `CQRS_ES_URL`, and its
    indices dropped afterwards."""
    with setup(kafka_config, pg_dsn, prefix) as found:
        create_topics(kafka_config, [f"{prefix}projection.search.dlq"], PARTITIONS)
        found.env["CQRS_ES_URL"] = es_url
        try:
            yield found
        finally:
            asyncio.run(_drop_indices(es_url, IndexNames.for_prefix(prefix)))


async def _drop_indices(es_url: str, names: IndexNames) -> None:
    async with AsyncElasticsearch(es_url) as client:
        await drop_indices(client, names)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except psycopg.Error:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
