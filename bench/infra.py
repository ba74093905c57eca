"""Each stage's own namespace (topics, database, index prefix) and worker processes; all cleaned up.

Every stage gets a unique topic prefix `bench-<run>-<stage>.`, a fresh PostgreSQL database
created from the configured DSN (its read models in the prefix's schema there), and the
Elasticsearch indices named after that prefix; `close` deletes the topics, force-drops the
database and deletes the indices, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from confluent_kafka.admin import AdminClient
from elasticsearch import Elasticsearch

from bench.config import BenchConfig
from projections.config import SearchConfig
from projections.postgres.migrate import migration_files
from projections.postgres.schema import schema_dsn, schema_for_prefix
from projections.search.client import make_sync_client
from projections.search.index import IndexNames
from topics import Catalogue, apply

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Namespace:
    """One stage's topics, database and index prefix; use as a context manager."""

    config: BenchConfig
    prefix: str
    database: str
    _created_db: bool = False
    _admin: AdminClient | None = field(default=None, repr=False)

    @classmethod
    def new(cls, config: BenchConfig, run_id: str, stage: str) -> Namespace:
        return cls(config, f"bench-{run_id}-{stage}.", f"bench_{run_id}_{stage}")

    @property
    def kafka(self) -> dict[str, Any]:
        """The bench's own clients' properties: warnings and worse only (librdkafka level 4)."""
        return {**self.config.kafka.client_config(), "log_level": 4}

    @property
    def catalogue(self) -> Catalogue:
        return Catalogue(prefix=self.prefix, partitions=self.config.partitions,
                         replication_factor=self.config.replication_factor)

    @property
    def dsn(self) -> str:
        return urlunsplit(urlsplit(self.config.postgres.dsn)._replace(path=f"/{self.database}"))

    @property
    def schema(self) -> str:
        """The live schema of this namespace's prefix, in its own database."""
        return schema_for_prefix(self.prefix)

    @property
    def live_dsn(self) -> str:
        """`dsn` in the live schema: where the stage's projector writes its read models."""
        return schema_dsn(self.dsn, self.schema)

    @property
    def index_names(self) -> IndexNames:
        return IndexNames.for_prefix(self.prefix)

    def env(self) -> dict[str, str]:
        """The environment of a worker process of this namespace."""
        return {**os.environ, "CQRS_TOPIC_PREFIX": self.prefix, "CQRS_PG_DSN": self.dsn,
                "CQRS_PG_SCHEMA": self.schema,
                "CQRS_PARTITIONS": str(self.config.partitions),
                "CQRS_SEARCH_REFRESH_INTERVAL": self.config.search.refresh_interval}

    def apply_topics(self) -> None:
        self._admin = AdminClient(self.kafka)
        report = apply(self._admin, self.catalogue)
        if not report.ok:
            raise RuntimeError(f"topics of {self.prefix}: {report}")

    def create_database(self, migrate: bool = False) -> str:
        """A fresh, empty database (with the read models' schema if `migrate`); its DSN."""
        with psycopg.connect(self.config.postgres.dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.database}"'.encode())
        self._created_db = True
        if migrate:
            with psycopg.connect(self.dsn) as connection:
                for _, sql in migration_files():
                    connection.execute(sql.encode())
        return self.dsn

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._delete_topics()
        if self._created_db:
            with contextlib.suppress(Exception):
                drop_database(self.config.postgres.dsn, self.database)
        with contextlib.suppress(Exception):
            delete_indices(self.config.search, f"{self.index_names.alias}*")

    def _delete_topics(self) -> None:
        admin = self._admin or AdminClient(self.kafka)
        names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(self.prefix)]
        if names:
            for future in admin.delete_topics(names).values():
                future.exception(30)

    def __enter__(self) -> Namespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def es_client(search: SearchConfig) -> Elasticsearch:
    return make_sync_client(search, request_timeout=60)


def delete_indices(search: SearchConfig, pattern: str) -> None:
    """Delete the indices matching `pattern`, by name (wildcard deletes are refused)."""
    with es_client(search) as client:
        found = sorted(client.indices.get(index=pattern, allow_no_indices=True).body)
        if found:
            client.indices.delete(index=",".join(found), ignore_unavailable=True)


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident memory of a live process (`VmHWM`), in MiB; `None` once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Worker:
    """`python -m cqrs <args>` in a stage's namespace, its output in `log`; SIGTERM on stop."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self.peak_mib: float | None = None
        self._offset = 0
        self._total = 0
        self.totals: dict[str, int] = {}
        self.points: list[tuple[float, int]] = []
        """(log timestamp, epoch seconds; running total) of every batch the worker logged."""
        self.assigned_at: float | None = None
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cqrs", *args], cwd=ROOT, env=env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def alive(self) -> bool:
        return self.process.poll() is None

    def new_lines(self) -> list[str]:
        with self.log.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        return complete.decode(errors="replace").splitlines()

    def processor_accepted(self) -> int:
        """Accepted commands so far, from the processor's `batch committed` JSON log lines."""
        for line in self.new_lines():
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError, KeyError, TypeError):
                document = json.loads(line)
                at = datetime.fromisoformat(document["ts"]).timestamp()
                if document["event"] == "assigned" and not self.points:
                    self.assigned_at = at
                elif document["event"] == "batch committed":
                    self.totals = dict(document["totals"])
                    self._total = int(self.totals["accepted"])
                    self.points.append((at, self._total))
        return self._total

    def projector_consumed(self) -> int:
        """Events accounted for so far, from the projector's per-batch `batch` JSON lines."""
        for line in self.new_lines():
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError, KeyError, TypeError):
                document = json.loads(line)
                if document["event"] == "batch":
                    at = datetime.fromisoformat(document["ts"]).timestamp()
                    self._total = int(document["totals"]["consumed"])
                    self.points.append((at, self._total))
        return self._total

    def stop(self, timeout: float = 30) -> int:
        self.peak_mib = peak_rss_mib(self.process.pid) or self.peak_mib
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


@contextlib.contextmanager
def workers() -> Iterator[list[Worker]]:
    """A list to append started workers to; every one is stopped on exit."""
    started: list[Worker] = []
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def run_id() -> str:
    return uuid.uuid4().hex[:6]


def drop_database(admin_dsn: str, name: str, attempts: int = 40) -> None:
    """`DROP DATABASE … WITH (FORCE)`, retried while an autovacuum worker is connected.

    A freshly written database draws an autovacuum worker, and a role that is not a superuser
    may not terminate it (InsufficientPrivilege), so FORCE fails until the worker is done:
    usually well under a second.
    """
    for attempt in range(attempts):
        try:
            with psycopg.connect(admin_dsn, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)
