"""A whole pipeline per e2e module: topics under a fresh prefix, a fresh database, and the
processor and both projectors as subprocesses (`python -m cqrs ...`, as in production).

Services come from `tests.support.services.resolve_endpoints` (environment, else testcontainers,
else a failure saying how to start them). Everything is removed afterwards: processes stopped
with SIGTERM, topics deleted, the search index dropped, the database dropped.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from elasticsearch import AsyncElasticsearch

from cqrs.settings import Settings
from projections.search.index import IndexNames, drop_indices
from tests.integration.projector_harness import fresh_database
from tests.support.services import Endpoints, resolve_endpoints
from topics.admin import apply
from topics.catalogue import Catalogue

PARTITIONS = 3
ROOT = Path(__file__).resolve().parents[2]
WORKERS = {"processor": ["processor"], "postgres": ["project", "postgres"],
           "search": ["project", "search"]}


@dataclass(frozen=True)
class Pipeline:
    """A running pipeline: its settings, the environment that names it, the workers' logs."""

    settings: Settings
    env: dict[str, str]
    logs: Path

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}"
                         for log in sorted(self.logs.glob("*.log")))


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    with resolve_endpoints() as found:
        yield found


@pytest.fixture(scope="module")
def pipeline(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    prefix = f"e2e-{uuid.uuid4().hex[:10]}."
    kafka_config: dict[str, str | int | float | bool] = {
        "bootstrap.servers": endpoints.kafka_bootstrap}
    admin = AdminClient(kafka_config)
    catalogue = Catalogue(prefix=prefix, partitions=PARTITIONS, replication_factor=1)
    report = apply(admin, catalogue)
    assert report.ok, report
    logs = tmp_path_factory.mktemp("pipeline")
    try:
        with fresh_database(endpoints.pg_dsn) as (_, dsn):
            env = {"CQRS_TOPIC_PREFIX": prefix, "CQRS_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
                   "CQRS_PG_DSN": dsn, "CQRS_ES_URL": endpoints.es_url,
                   "CQRS_PARTITIONS": str(PARTITIONS)}
            settings = Settings(kafka_bootstrap=endpoints.kafka_bootstrap, pg_dsn=dsn,
                                es_url=endpoints.es_url, topic_prefix=prefix,
                                partitions=PARTITIONS)
            workers = [_start(name, args, env, logs) for name, args in WORKERS.items()]
            try:
                yield Pipeline(settings, env, logs)
            finally:
                for worker in workers:
                    _stop(worker)
    finally:
        admin.delete_topics([spec.name for spec in catalogue.specs()])
        asyncio.run(_drop_index(endpoints.es_url, IndexNames.for_prefix(prefix)))


def _start(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    with (logs / f"{name}.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "cqrs", *args], cwd=ROOT,
                                env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


async def _drop_index(es_url: str, names: IndexNames) -> None:
    async with AsyncElasticsearch(es_url) as client:
        await drop_indices(client, names)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.e2e)
