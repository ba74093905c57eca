"""Failover under load on a 3-node cluster: the pipeline loses and duplicates nothing.

One module-scoped cluster (its own state directory and ports, `tests.support.cluster`), the
catalogue applied with replication factor 3, the processor and the PostgreSQL projector as
subprocesses (`python -m cqrs ...`) against it, and a producer thread sending a steady load of
commands (a create, then a chain of updates, over a few hundred user streams). Each test runs one
fault while the load flows, then waits until every command is answered and checks with raw
clients: every command answered exactly once and accepted, versions gapless per stream in the
events topic, no event key twice, the `users` rows and the search documents (`cqrs project
search` runs too) equal to their projectors' fold of the events.

The pause a fault caused is the longest gap between consecutive command results (as a reader of
`<p>command-results` sees them arrive) from the fault until the window's last answer. The figures
are printed at the end of the module (`pytest -s`) and quoted in docs/operations.md.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cqrs.config import Config
from cqrs.settings import Settings
from tests.integration.projector_harness import fresh_database
from tests.support.accounting import USERS_QUERY, Documents, account
from tests.support.cluster import (
    CONSUMER_OFFSETS,
    NODES,
    TRANSACTION_STATE,
    Cluster,
    running_cluster,
)
from tests.support.command_load import Load, Results
from tests.support.pipeline import start_worker, stop_process
from tests.support.processor import ProcessorProcess
from tests.support.search_index import drop_search_indices, indexed_documents
from tests.support.services import Endpoints
from topics import Catalogue, apply, partition_for

pytestmark = pytest.mark.slow

WARM_UP_S = 3.0
AFTER_S = 3.0
DOWN_S = 12
"""How long a node stays killed or stopped: beyond `broker.session.timeout.ms` (9 s), after
which the controller fences it and moves its leaderships, and the processor's session (6 s)."""
TRANSACTION_TIMEOUT_MS = 30_000
"""The processor's, as docs/operations.md advises on a cluster: above a failover. With the
default 10 s a SIGSTOPped leader outlasted the open transaction, the coordinator aborted it and
bumped the producer's epoch, and the processor took that for a fence and exited (78)."""
PARTITIONS = 3
FIGURES: list[str] = []


@dataclass
class Pipeline:
    cluster: Cluster
    catalogue: Catalogue
    settings: Settings
    logs: Path
    processor: ProcessorProcess
    projector: subprocess.Popen[bytes]
    search_projector: subprocess.Popen[bytes]
    load: Load
    results: Results
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def kafka(self) -> dict[str, str]:
        return {"bootstrap.servers": self.cluster.bootstrap}

    @property
    def transactional_id(self) -> str:
        return f"{self.catalogue.prefix}processor-failover"

    def log_tail(self, chars: int = 4000) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}"
                         for log in sorted(self.logs.glob("*.log")))

    def alive(self) -> None:
        assert self.processor.popen.poll() is None, f"processor exited\n{self.log_tail()}"
        assert self.projector.poll() is None, f"projector exited\n{self.log_tail()}"
        assert self.search_projector.poll() is None, (
            f"search projector exited\n{self.log_tail()}")

    def users(self) -> dict[str, tuple[Any, ...]]:
        live = Config.from_settings(self.settings).postgres.live_dsn
        with psycopg.connect(live) as connection:
            rows = connection.execute(USERS_QUERY).fetchall()
        return {row[0]: tuple(row) for row in rows}

    def documents(self) -> Documents:
        return indexed_documents(self.settings.es_url, self.catalogue.prefix)

    def in_sync_topics(self) -> list[str]:
        return [spec.name for spec in self.catalogue.specs()] + [TRANSACTION_STATE,
                                                                   CONSUMER_OFFSETS]

    def log_counts(self) -> dict[str, int]:
        lines = self.processor.log()
        return {"aborted": sum(line.get("event") == "aborting batch" for line in lines),
                "producer_restarts": sum(line.get("event") == "restarting producer"
                                         for line in lines)}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("cqrs-kafka-failover-") as started:
        yield started


@pytest.fixture(scope="module")
def pipeline(cluster: Cluster, endpoints: Endpoints,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    logs = tmp_path_factory.mktemp("failover")
    catalogue = Catalogue(prefix=f"failover-{uuid.uuid4().hex[:10]}.", partitions=PARTITIONS,
                          replication_factor=NODES)
    report = apply(cluster.admin(), catalogue)
    assert report.ok, report
    with fresh_database(endpoints.pg_dsn) as (_, dsn):
        env = {"CQRS_TOPIC_PREFIX": catalogue.prefix, "CQRS_KAFKA_BOOTSTRAP": cluster.bootstrap,
               "CQRS_PARTITIONS": str(PARTITIONS), "CQRS_REPLICATION_FACTOR": str(NODES),
               "CQRS_PG_DSN": dsn, "CQRS_PROJECTOR_POSTGRES_METRICS_PORT": "0",
               "CQRS_ES_URL": endpoints.es_url, "CQRS_PROJECTOR_SEARCH_METRICS_PORT": "0",
               "CQRS_PROCESSOR_TRANSACTION_TIMEOUT_MS": str(TRANSACTION_TIMEOUT_MS)}
        settings = Settings(kafka_bootstrap=cluster.bootstrap, pg_dsn=dsn,
                            es_url=endpoints.es_url, topic_prefix=catalogue.prefix,
                            partitions=PARTITIONS, replication_factor=NODES)
        processor = ProcessorProcess({"bootstrap.servers": cluster.bootstrap}, catalogue,
                                     logs / "processor.log", "failover", env=env)
        projector, search_projector = (
            start_worker(kind, ["project", kind], env, logs) for kind in ("postgres", "search"))
        load = Load(cluster.bootstrap, catalogue.commands.name, PARTITIONS)
        results = Results(cluster.bootstrap, catalogue.command_results.name, PARTITIONS)
        running = Pipeline(cluster, catalogue, settings, logs, processor, projector,
                           search_projector, load, results)
        load.start()
        results.start()
        try:
            yield running
        finally:
            load.stopping.set()
            results.stopping.set()
            load.join(60)
            results.join(30)
            for worker in (processor.popen, projector, search_projector):
                _stop(worker)
            drop_search_indices(endpoints.es_url, catalogue.prefix)
            print("\nfailover figures (python3 -m pytest -s "
                  "tests/integration/test_kafka_failover.py):", *FIGURES, sep="\n")


def _stop(worker: subprocess.Popen[bytes]) -> None:
    stop_process(worker, 60)


def _under_load(pipeline: Pipeline, name: str, fault: Callable[[], str]) -> None:
    """Load flows; `fault()` runs (returning what it did); the load stops a little after; every
    command is answered; then the checks, and the figures recorded for `name`."""
    load, results = pipeline.load, pipeline.results
    load.resume()
    time.sleep(WARM_UP_S)
    pipeline.alive()
    began = time.monotonic()
    did = fault()
    recovered = time.monotonic() - began
    time.sleep(AFTER_S)
    sent = load.pause()
    deadline = time.monotonic() + 180
    while not sent <= results.answered():
        pipeline.alive()
        assert time.monotonic() < deadline, f"unanswered after 180 s\n{pipeline.log_tail()}"
        time.sleep(0.5)
    answered = time.monotonic() - began
    pipeline.alive()
    counts = _check(pipeline, sent)
    figures = {"fault": did, "pause_s": round(results.longest_gap(began), 1),
               "fault_s": round(recovered, 1), "answered_s": round(answered, 1), **counts,
               **pipeline.log_counts()}
    pipeline.faults[name] = figures
    FIGURES.append(f"{name}: {figures}")
    print(f"\n{name}: {figures}")


def _check(pipeline: Pipeline, sent: set[str]) -> dict[str, int]:
    """The raw-client checks over everything sent so far (`accounting`); returns the counts."""
    assert pipeline.load.failures == []
    return account(pipeline.kafka, pipeline.catalogue, sent, pipeline.users,
                   documents=pipeline.documents)


def _busiest_partition(pipeline: Pipeline) -> int:
    counts = Counter(partition_for(stream_id, PARTITIONS)
                     for stream_id in pipeline.load.sent.values())
    return counts.most_common(1)[0][0]


def test_sigkill_of_the_busiest_partitions_leader_then_restart(pipeline: Pipeline) -> None:
    cluster = pipeline.cluster

    def fault() -> str:
        partition = _busiest_partition(pipeline)
        victim = cluster.leader(pipeline.catalogue.events.name, partition)
        cluster.signal(victim, signal.SIGKILL)
        time.sleep(DOWN_S)
        cluster.up(victim)
        cluster.wait_in_sync(pipeline.in_sync_topics())
        return f"SIGKILL node {victim} (leader of events partition {partition}), {DOWN_S} s, up"

    _under_load(pipeline, "leader SIGKILL", fault)


def test_sigkill_of_the_transaction_coordinator(pipeline: Pipeline) -> None:
    cluster = pipeline.cluster

    def fault() -> str:
        victim = cluster.coordinator(pipeline.transactional_id)
        cluster.signal(victim, signal.SIGKILL)
        time.sleep(DOWN_S)
        cluster.up(victim)
        cluster.wait_in_sync(pipeline.in_sync_topics())
        return f"SIGKILL node {victim} (transaction coordinator), {DOWN_S} s, up"

    _under_load(pipeline, "coordinator SIGKILL", fault)


def test_sigstop_longer_than_the_session_timeout(pipeline: Pipeline) -> None:
    cluster = pipeline.cluster

    def fault() -> str:
        partition = _busiest_partition(pipeline)
        victim = cluster.leader(pipeline.catalogue.commands.name, partition)
        cluster.signal(victim, signal.SIGSTOP)
        try:
            time.sleep(DOWN_S)
        finally:
            cluster.signal(victim, signal.SIGCONT)
        cluster.wait_in_sync(pipeline.in_sync_topics())
        return (f"SIGSTOP node {victim} (leader of commands partition {partition}), {DOWN_S} s, "
                "SIGCONT")

    _under_load(pipeline, "SIGSTOP", fault)


def test_rolling_restart_of_every_node(pipeline: Pipeline) -> None:
    cluster = pipeline.cluster

    def fault() -> str:
        for node in range(1, NODES + 1):
            cluster.down(node)
            cluster.up(node)
            cluster.wait_in_sync(pipeline.in_sync_topics())
        return "each node in turn: SIGTERM, up, wait until every replica is in sync"

    _under_load(pipeline, "rolling restart", fault)
