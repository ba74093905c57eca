"""Many workers under load: members join and leave, and nothing is lost or written twice.

Three `cqrs processor` subprocesses (one group) and two `cqrs project postgres` instances (one
group) on a fresh prefix with 6 partitions, while a producer thread sends a steady load (a
create, then renames, over a few hundred user streams). During the run: SIGTERM a processor,
start a new one, SIGKILL another processor, SIGKILL a projector instance and start its
replacement. Afterwards the raw-client accounting of `tests.support.accounting`.

Measured and printed (`pytest -s`, quoted in docs/operations.md): the write-side pause per
membership change, as the longest gap between consecutive command results from the change until
the next one (over all partitions, and on the worst partition alone), and every processor
assignment as its log tells it: the partitions it got, how many it held already, the streams
restored and the seconds the restore and the wait for stable offsets took.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cqrs.config import Config
from cqrs.settings import Settings
from tests.integration.projector_harness import fresh_database
from tests.support.accounting import USERS_QUERY, Documents, Rows, account
from tests.support.cluster import wait
from tests.support.command_load import Load, Results
from tests.support.pipeline import start_worker, stop_process
from tests.support.processor import ProcessorProcess, topics_for
from tests.support.search_index import drop_search_indices, indexed_documents
from tests.support.services import Endpoints
from topics import Catalogue, partition_for

pytestmark = pytest.mark.slow

PARTITIONS = 6
WARM_UP_S = 5.0
SETTLE_S = 5.0
"""Load time after a change's rebalance before the next change."""


@dataclass
class Workers:
    """The running pipeline: its processors and projector instances by name, the load."""

    catalogue: Catalogue
    settings: Settings
    env: dict[str, str]
    logs: Path
    load: Load
    results: Results
    processors: dict[str, ProcessorProcess] = field(default_factory=dict)
    projectors: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    changes: list[tuple[str, float, float]] = field(default_factory=list)
    """What changed, and when (monotonic, wall clock)."""

    @property
    def kafka(self) -> dict[str, str]:
        return {"bootstrap.servers": self.settings.kafka_bootstrap}

    def start_processor(self, name: str) -> None:
        self.processors[name] = ProcessorProcess(self.kafka, self.catalogue,
                                                 self.logs / f"processor-{name}.log", name,
                                                 env=self.env)

    def start_projector(self, name: str, kind: str = "postgres") -> None:
        """`cqrs project <kind>` (postgres or search) as instance `name`."""
        self.projectors[name] = start_worker(
            f"{kind}-{name}", ["project", kind, "--metrics-port", "0"], self.env, self.logs)

    def change(self, what: str) -> None:
        self.changes.append((what, time.monotonic(), time.time()))

    def running(self) -> list[subprocess.Popen[bytes]]:
        return [p.popen for p in self.processors.values()] + list(self.projectors.values())

    def alive(self, *names: str) -> None:
        for name in names:
            worker = (self.processors[name].popen if name in self.processors
                      else self.projectors[name])
            assert worker.poll() is None, f"{name} exited\n{self.log_tail()}"

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}"
                         for log in sorted(self.logs.glob("*.log")))

    def users(self) -> Rows:
        live = Config.from_settings(self.settings).postgres.live_dsn
        with psycopg.connect(live) as connection:
            rows = connection.execute(USERS_QUERY).fetchall()
        return {row[0]: tuple(row) for row in rows}

    def documents(self) -> Documents:
        return indexed_documents(self.settings.es_url, self.catalogue.prefix)


@pytest.fixture
def workers(endpoints: Endpoints, tmp_path: Path) -> Iterator[Workers]:
    kafka = {"bootstrap.servers": endpoints.kafka_bootstrap}
    prefix = f"workers-{uuid.uuid4().hex[:10]}."
    with topics_for(kafka, prefix, PARTITIONS) as catalogue, \
            fresh_database(endpoints.pg_dsn) as (_, dsn):
        env = {"CQRS_TOPIC_PREFIX": prefix, "CQRS_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
               "CQRS_PARTITIONS": str(PARTITIONS), "CQRS_PG_DSN": dsn,
               "CQRS_ES_URL": endpoints.es_url}
        settings = Settings(kafka_bootstrap=endpoints.kafka_bootstrap, pg_dsn=dsn,
                            es_url=endpoints.es_url, topic_prefix=prefix, partitions=PARTITIONS)
        running = Workers(catalogue, settings, env, tmp_path,
                          Load(endpoints.kafka_bootstrap, catalogue.commands.name, PARTITIONS),
                          Results(endpoints.kafka_bootstrap, catalogue.command_results.name,
                                  PARTITIONS))
        try:
            yield running
        finally:
            running.load.stopping.set()
            running.results.stopping.set()
            for worker in running.running():
                stop_process(worker)
            if running.load.is_alive():
                running.load.join(60)
            if running.results.is_alive():
                running.results.join(30)
            drop_search_indices(endpoints.es_url, prefix)


def test_members_join_and_leave_under_load(workers: Workers) -> None:
    for name in ("p1", "p2", "p3"):
        workers.start_processor(name)
    for name in ("j1", "j2"):
        workers.start_projector(name)
    for name in ("s1", "s2"):
        workers.start_projector(name, "search")
    _settled(workers, ["p1", "p2", "p3"], 0.0)
    wait("both instances of each projector assigned",
         lambda: all(_projector_assignments(workers, name)
                     for name in ("j1", "j2", "s1", "s2")), 90)
    load, results = workers.load, workers.results
    load.start()
    results.start()
    load.resume()
    time.sleep(WARM_UP_S)
    workers.alive("p1", "p2", "p3", "j1", "j2", "s1", "s2")

    # First, as the projectors' groups wait for the killed member's session (15 s) while the
    # processors' changes run.
    workers.change("SIGKILL projector j1, SIGTERM search projector s1, start j3 and s3")
    projector_killed = time.time()
    workers.projectors["j1"].kill()
    workers.projectors["j1"].wait(30)
    workers.projectors["s1"].send_signal(signal.SIGTERM)
    assert workers.projectors["s1"].wait(30) == 0, workers.log_tail()
    workers.start_projector("j3")
    workers.start_projector("s3", "search")
    time.sleep(SETTLE_S)
    workers.change("SIGTERM processor p1")
    assert workers.processors["p1"].stop() == 0, workers.log_tail()
    _settled(workers, ["p2", "p3"], workers.changes[-1][2])
    time.sleep(SETTLE_S)
    workers.change("start processor p4")
    workers.start_processor("p4")
    _settled(workers, ["p2", "p3", "p4"], workers.changes[-1][2])
    time.sleep(SETTLE_S)
    workers.change("SIGKILL processor p2")
    workers.processors["p2"].kill()
    _settled(workers, ["p3", "p4"], workers.changes[-1][2])
    time.sleep(SETTLE_S)
    sent = load.pause()
    ended = time.monotonic()

    deadline = time.monotonic() + 90
    while not sent <= results.answered():
        workers.alive("p3", "p4")
        assert time.monotonic() < deadline, f"unanswered after 90 s\n{workers.log_tail()}"
        time.sleep(0.5)
    workers.alive("p3", "p4", "j2", "j3", "s2", "s3")
    counts = account(workers.kafka, workers.catalogue, sent, workers.users,
                     documents=workers.documents)
    workers.alive("p3", "p4", "j2", "j3", "s2", "s3")
    assert load.failures == []

    print("\nmany workers (python3 -m pytest -s tests/integration/test_many_workers.py):")
    print(f"counts: {counts}")
    for line in [*_pauses(workers, ended), *_restores(workers),
                 *_projector_pause(workers, projector_killed)]:
        print(line)
    for name, process in workers.processors.items():
        for assignment in _assignments(process):
            print(f"{name}: {assignment}")
    # Cooperative rebalancing: no change makes the group restore every partition again.
    assignments = [a for process in workers.processors.values() for a in _assignments(process)]
    for what, since, until in _windows(workers):
        moved = sum(len(a["partitions"]) for a in assignments if since < a["wall"] <= until)
        assert moved < PARTITIONS, f"{what}: {moved} partitions restored"


def _settled(workers: Workers, names: list[str], since: float) -> float:
    """Seconds until each of `names` logged an assignment after `since` (wall clock), each
    owning some partitions and together every partition (a cooperative rebalance ends with an
    assignment at every member, of nothing new for those that only kept theirs)."""

    def done() -> bool:
        latest = [_assignments(workers.processors[name]) for name in names]
        if not all(found and found[-1]["owned"] and found[-1]["wall"] > since
                   for found in latest):
            return False
        owned = [p for found in latest for p in found[-1]["owned"]]
        return sorted(owned) == list(range(PARTITIONS))

    return wait(f"{names} assigned every partition", done, 90)


def _windows(workers: Workers) -> list[tuple[str, float, float]]:
    """Each change and the wall-clock window until the next (or now)."""
    bounds = [*workers.changes, ("end", 0.0, time.time())]
    return [(what, since, until) for (what, _, since), (_, _, until) in pairwise(bounds)]


def _restores(workers: Workers) -> list[str]:
    """Per change: the processors' assignments it caused, and what they restored."""
    assignments = [a for process in workers.processors.values() for a in _assignments(process)]
    found = []
    for what, since, until in _windows(workers):
        caused = [a for a in assignments if since < a["wall"] <= until]
        partitions = sum(len(a["partitions"]) for a in caused)
        found.append(
            f"{what}: {len(caused)} assignments, {partitions} partitions restored "
            f"({sum(a['kept'] for a in caused)} kept without a restore), "
            f"{sum(a['restored_streams'] for a in caused)} streams, restore "
            f"{max((a['restore_s'] for a in caused), default=0):.2f} s at most, revocation to "
            f"assignment {max((a['revoked_to_assigned_s'] or 0 for a in caused), default=0):.2f}"
            " s at most")
    return found


def _projector_assignments(workers: Workers, name: str) -> list[tuple[float, int]]:
    """The instance's non-empty assignments of the events topic: (wall clock, partitions)."""
    path = next(workers.logs.glob(f"*-{name}.log"))
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if "Setting newly assigned partitions" in line and line.startswith("{"):
            document = json.loads(line)
            partitions = str(document.get("event")).count(workers.catalogue.events.name)
            if partitions:
                found.append((_seconds(document.get("ts")), partitions))
    return found


def _projector_pause(workers: Workers, killed: float) -> list[str]:
    """How long after the SIGKILL the surviving and the new instance got partitions again."""
    found = []
    for name in ("j2", "j3", "s2", "s3"):
        after = [(at, count) for at, count in _projector_assignments(workers, name)
                 if at > killed]
        first = (f"{after[0][1]} partitions {after[0][0] - killed:.1f} s after it"
                 if after else "none")
        found.append(f"projector {name}: first assignment after the change: {first}")
    return found


def _pauses(workers: Workers, ended: float) -> list[str]:
    """Per change: the longest gap between results over all partitions, and on the worst one
    (a partition's results pause for as long as it has no owner, the others' may not)."""
    arrivals: dict[int, list[float]] = defaultdict(list)
    for at, command_id in workers.results.arrivals:
        stream_id = workers.load.sent[command_id]
        arrivals[partition_for(stream_id, PARTITIONS)].append(at)
    bounds = [*workers.changes, ("end", ended, 0.0)]
    found = []
    for (what, since, _), (_, until, _) in pairwise(bounds):
        overall = workers.results.longest_gap(since, until)
        worst = max(_gap(sorted(times), since, until) for times in arrivals.values())
        found.append(f"{what}: pause {overall:.1f} s over all partitions, "
                     f"{worst:.1f} s on the worst partition")
    return found


def _gap(times: list[float], since: float, until: float) -> float:
    """The longest time without a result in [since, until): a pause that lasts past `until`
    counts up to it here, and on into the next window there."""
    inside = [at for at in times if since <= at < until]
    return max((b - a for a, b in pairwise([since, *inside, until])), default=0.0)


def _assignments(process: ProcessorProcess) -> list[dict[str, Any]]:
    """Each assignment of the processor's log: when, the partitions it added (restored), those
    it owned afterwards, how many it kept through the rebalance without a restore, and how many
    of the added it had owned just before (a partition lost and given back: restored again),
    the streams restored, the restore's and the
    stable-offsets wait's seconds, and the time from the revocation (or the start) to the
    assignment's end."""
    found: list[dict[str, Any]] = []
    before: set[int] = set()
    began: float | None = None
    restored: dict[str, Any] = {}
    stable: dict[str, Any] = {}
    for line in process.log():
        event, at = line.get("event"), _seconds(line.get("ts"))
        if event in ("started", "revoked"):
            began = at
        elif event == "offsets stable":
            stable = line
        elif event == "restored":
            restored = {"streams": sum((line.get("counts") or {}).values()),
                        "seconds": line.get("seconds")}
        elif event == "assigned":
            partitions = list(line.get("partitions") or [])
            now = set(line.get("owned") or partitions)
            found.append({"at": line.get("ts"), "wall": at, "partitions": partitions,
                          "owned": sorted(now), "kept": len(now - set(partitions)),
                          "held_before": len(set(partitions) & before),
                          "restored_streams": restored.get("streams", 0),
                          "restore_s": restored.get("seconds", 0.0),
                          "stable_wait_s": stable.get("waited_s", 0.0),
                          "revoked_to_assigned_s":
                              round(at - began, 3) if began is not None else None})
            before = now
            restored, stable, began = {}, {}, None
    return found


def _seconds(timestamp: Any) -> float:
    return datetime.fromisoformat(str(timestamp)).timestamp()
