"""A whole pipeline for a test module: topics under a fresh prefix, a fresh database, and the
processor and both projectors as subprocesses (`python -m cqrs ...`, as in production), plus
the readers a test needs to account for every record: results, dead letters, rows, documents.

Everything is removed afterwards: processes stopped with SIGTERM, topics deleted, the search
index dropped, the database dropped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient
from elasticsearch import Elasticsearch

from cqrs.config import Config
from cqrs.settings import Settings
from projections.search.index import IndexNames
from tests.integration.projector_harness import fresh_database, log_totals
from tests.support.metrics import free_port
from tests.support.search_index import drop_search_indices
from tests.support.services import Endpoints
from topics import Catalogue, apply

ROOT = Path(__file__).resolve().parents[2]
WORKERS = {"processor": ["processor"], "postgres": ["project", "postgres"],
           "search": ["project", "search"]}


@dataclass
class Pipeline:
    """A running pipeline: its settings, the environment that names it, its workers and logs."""

    settings: Settings
    env: dict[str, str]
    logs: Path
    catalogue: Catalogue
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def kafka_config(self) -> dict[str, str]:
        return {"bootstrap.servers": self.settings.kafka_bootstrap}

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}"
                         for log in sorted(self.logs.glob("*.log")))

    def exited(self) -> dict[str, int]:
        """Workers that are no longer running, with their exit status."""
        return {name: code for name, worker in self.workers.items()
                if (code := worker.poll()) is not None}

    def totals(self, projector: str) -> dict[str, int]:
        """The projector's last logged totals (consumed, applied, skipped, parked, dead)."""
        return log_totals((self.logs / f"{projector}.log").read_text(errors="replace"))

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """`query` in the pipeline's live schema (its prefix's, as the workers derive it)."""
        live = Config.from_settings(self.settings).postgres.live_dsn
        with psycopg.connect(live) as connection:
            return connection.execute(query.encode(), params).fetchall()

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the projectors have made their read models (tables migrated, index created)."""
        alias = IndexNames.for_prefix(self.settings.topic_prefix).alias

        def ready() -> bool:
            with Elasticsearch(self.settings.es_url) as client:
                if not client.indices.exists_alias(name=alias):
                    return False
            return bool(self.rows("SELECT to_regclass('users') IS NOT NULL")[0][0])

        wait_until(ready, timeout, "the projectors' read models exist", self)

    def documents(self) -> dict[str, dict[str, Any]]:
        """Every user document of the search index, by user id (refreshed first)."""
        alias = IndexNames.for_prefix(self.settings.topic_prefix).alias
        with Elasticsearch(self.settings.es_url) as client:
            client.indices.refresh(index=alias)
            found = client.search(index=alias, size=10_000, query={"match_all": {}},
                                  version=True)
        return {hit["_source"]["user_id"]: {**hit["_source"], "_version": hit["_version"]}
                for hit in found["hits"]["hits"]}


@contextmanager
def running_pipeline(endpoints: Endpoints, logs: Path, partitions: int = 3,
                     kind: str = "e2e", log_level: str | None = None,
                     metrics_ports: dict[str, int] | None = None) -> Iterator[Pipeline]:
    """Topics, a database and the three workers under a fresh prefix; all removed on exit.
    `log_level` (`CQRS_LOG_LEVEL`, `cqrs --log-level`): DEBUG logs a line per command/event.
    `metrics_ports`: each worker's (`processor`, `postgres`, `search`) /metrics port; free ports
    by default, so pipelines never collide."""
    prefix = f"{kind}-{uuid.uuid4().hex[:10]}."
    kafka_config = {"bootstrap.servers": endpoints.kafka_bootstrap}
    admin = AdminClient(kafka_config)
    catalogue = Catalogue(prefix=prefix, partitions=partitions, replication_factor=1)
    report = apply(admin, catalogue)
    assert report.ok, report
    try:
        with fresh_database(endpoints.pg_dsn) as (_, dsn):
            env = {"CQRS_TOPIC_PREFIX": prefix, "CQRS_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
                   "CQRS_PG_DSN": dsn, "CQRS_ES_URL": endpoints.es_url,
                   "CQRS_PARTITIONS": str(partitions)}
            if log_level is not None:
                env["CQRS_LOG_LEVEL"] = log_level
            metrics_ports = metrics_ports or {name: free_port() for name in WORKERS}
            env.update({"CQRS_PROCESSOR_METRICS_PORT": str(metrics_ports["processor"]),
                        "CQRS_PROJECTOR_POSTGRES_METRICS_PORT": str(metrics_ports["postgres"]),
                        "CQRS_PROJECTOR_SEARCH_METRICS_PORT": str(metrics_ports["search"])})
            settings = Settings(kafka_bootstrap=endpoints.kafka_bootstrap, pg_dsn=dsn,
                                es_url=endpoints.es_url, topic_prefix=prefix,
                                partitions=partitions)
            pipeline = Pipeline(settings, env, logs, catalogue)
            pipeline.workers = {name: start_worker(name, args, env, logs)
                                for name, args in WORKERS.items()}
            try:
                pipeline.wait_ready()
                yield pipeline
            finally:
                for worker in pipeline.workers.values():
                    stop_process(worker)
    finally:
        admin.delete_topics([spec.name for spec in catalogue.specs()])
        drop_search_indices(endpoints.es_url, prefix)


def start_worker(name: str, args: list[str], env: dict[str, str],
                 logs: Path) -> subprocess.Popen[bytes]:
    """`python -m cqrs <args>` with `env` over this environment, its output in
    `<logs>/<name>.log`."""
    with (logs / f"{name}.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "cqrs", *args], cwd=ROOT,
                                env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 30) -> None:
    """SIGTERM, then SIGKILL after `grace_s` (a process stuck in a client call never stops)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@dataclass(frozen=True)
class Record:
    """A consumed record, headers as text."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.value or b"null")


class Tail:
    """Every committed record of some topics, read from the beginning and kept as it arrives."""

    def __init__(self, kafka_config: dict[str, str], topics: Iterable[str]) -> None:
        self._consumer = Consumer({**kafka_config, "group.id": f"tail-{uuid.uuid4().hex}",
                                   "isolation.level": "read_committed",
                                   "enable.auto.commit": False})
        assignment = []
        for topic in topics:
            metadata = self._consumer.list_topics(topic, timeout=30).topics[topic]
            assignment += [TopicPartition(topic, p, OFFSET_BEGINNING)
                           for p in metadata.partitions]
        self._consumer.assign(assignment)
        self.records: dict[str, list[Record]] = {topic: [] for topic in topics}

    def poll(self, seconds: float = 0.5) -> int:
        """Read what has arrived for up to `seconds`; returns how many records were new."""
        deadline, count = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            for message in self._consumer.consume(2000, 0.2):
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    continue
                headers = {k: (v or b"").decode("utf-8", "replace")
                           for k, v in message.headers() or []}
                self.records[message.topic()].append(Record(
                    message.topic(), message.partition(), message.offset(), message.key(),
                    message.value(), headers))
                count += 1
        return count

    def close(self) -> None:
        self._consumer.close()


def wait_until(check: Any, timeout: float, what: str, pipeline: Pipeline) -> None:
    """Poll `check()` until it is true; fail naming `what`, with the workers' log tails."""
    deadline = time.monotonic() + timeout
    while not check():
        assert not pipeline.exited(), f"workers exited {pipeline.exited()}\n{pipeline.log_tail()}"
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {what}\n{pipeline.log_tail()}")
        time.sleep(0.3)
