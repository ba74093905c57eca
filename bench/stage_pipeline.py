"""The whole pipeline: sustained rate (commands in → rows in PostgreSQL) and end-to-end latency.

The processor and both projectors run together as subprocesses in one namespace; a warm-up
command is followed through to PostgreSQL and search first, so start-up is never measured.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from bench.context import Context
from bench.infra import Namespace, Worker, es_client
from bench.measure import Sample, StageTimeout
from bench.workload import Pacer, command_record, produce_commands, producer, send
from topics import partition_for

PG_POLL_S = 0.01
ES_POLL_S = 0.05
LATENCY_SAMPLE = 2_000
"""Most ids followed for latency (evenly spread over the run)."""


def pipeline(ctx: Context, sustained_reference: Callable[[], float]) -> dict[str, Any]:
    """Sustained rate first, then latency at half of it (or of `sustained_reference()`)."""
    with Namespace.new(ctx.config, ctx.run_id, "e2e") as ns:
        ns.apply_topics()
        ns.create_database()
        roles = {"processor": ["processor"], "projector.postgres": ["project", "postgres"],
                 "projector.search": ["project", "search"]}
        started = [Worker(role, args, ns.env(), ctx.log(f"e2e-{role}"))
                   for role, args in roles.items()]
        try:
            _warm_up(ctx, ns, started)
            sustained = _sustained(ctx, ns, started)
            rate = sustained["rate"] or sustained_reference()
            latency = _latency(ctx, ns, rate / 2)
        finally:
            for worker in started:
                worker.stop()
                ctx.memory(worker.name, worker)
    return {"sustained": sustained, "latency": latency}


def _alive(workers: list[Worker]) -> Callable[[], bool]:
    return lambda: all(worker.alive() for worker in workers)


def _pg_count(connection: psycopg.Connection[Any], tag: str) -> Callable[[], int]:
    """Rows of users whose id starts with `tag` (0 until the projector has migrated)."""
    def count() -> int:
        try:
            row = connection.execute(
                "SELECT count(*) FROM users WHERE id LIKE %s", (f"{tag}%",)).fetchone()
            return int(row[0]) if row else 0
        except psycopg.errors.UndefinedTable:
            return 0
    return count


def _warm_up(ctx: Context, ns: Namespace, workers: list[Worker]) -> None:
    ctx.progress.begin("pipeline: start-up and warm-up command", 1)
    produce_commands(ns.kafka, ns.catalogue.commands.name, ns.config.partitions, "warm", 1)
    with psycopg.connect(ns.dsn, autocommit=True) as connection:
        ctx.watch(_pg_count(connection, "warm"), 1, "warm-up to PostgreSQL", _alive(workers))
    with es_client(ns.config.search) as client:
        def searchable() -> int:
            found = client.count(index=ns.index_names.alias, query={"term": {"user_id": "warm0"}},
                                 ignore_unavailable=True, allow_no_indices=True)
            return int(found.body["count"])
        ctx.watch(searchable, 1, "warm-up to search", _alive(workers))


def _sustained(ctx: Context, ns: Namespace, workers: list[Worker]) -> dict[str, Any]:
    count = ctx.sizes.pipeline_commands
    ctx.progress.begin("pipeline: commands in → rows in PostgreSQL", count)
    began = ctx.clock()
    produce_commands(ns.kafka, ns.catalogue.commands.name, ns.config.partitions, "w", count)
    produced_s = ctx.clock() - began
    series: list[Sample] = [(0.0, 0)]
    with psycopg.connect(ns.dsn, autocommit=True) as connection:
        read = _pg_count(connection, "w")
        while (done := read()) < count:
            if not all(worker.alive() for worker in workers):
                raise StageTimeout(f"pipeline: a worker exited at {done}/{count}")
            ctx.check_deadline("pipeline")
            if done != series[-1][1]:
                series.append((ctx.clock() - began, done))
            ctx.progress.update(done)
            time.sleep(0.05)
    elapsed = ctx.clock() - began
    series.append((elapsed, count))
    # Steady state: from the first rows seen in PostgreSQL to the last, the first poll's rows
    # excluded, so neither start-up nor the pipeline's fill latency enters the rate.
    first_at, first_count = next(((t, n) for t, n in series if n > 0), (0.0, 0))
    steady = (count - first_count) / (elapsed - first_at) if elapsed > first_at else 0.0
    return {"count": count - first_count, "seconds": round(elapsed - first_at, 3),
            "rate": round(steady, 1), "end_to_end_seconds": round(elapsed, 3),
            "end_to_end_rate": round(count / elapsed, 1), "produce_seconds": round(produced_s, 3),
            "series": [[round(t, 3), n] for t, n in series]}


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)
    cut = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else (
        ordered * 99)
    return {"count": len(ordered), "p50_ms": round(cut[49] * 1000, 1),
            "p95_ms": round(cut[94] * 1000, 1), "p99_ms": round(cut[98] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1)}


class _Follower(threading.Thread):
    """Polls one sink for the followed ids; records when each first appears."""

    def __init__(self, find: Callable[[list[str]], set[str]], interval: float) -> None:
        super().__init__(daemon=True)
        self.sent: dict[str, float] = {}
        self.seen: dict[str, float] = {}
        self.done = threading.Event()
        self._find, self._interval, self._lock = find, interval, threading.Lock()

    def follow(self, user_id: str, at: float) -> None:
        with self._lock:
            self.sent[user_id] = at

    def run(self) -> None:
        while not self.done.is_set():
            with self._lock:
                pending = [i for i in self.sent if i not in self.seen]
            if pending:
                found = self._find(pending)
                now = time.monotonic()
                for user_id in found:
                    self.seen.setdefault(user_id, now)
            time.sleep(self._interval)

    def latencies(self) -> list[float]:
        return [self.seen[i] - self.sent[i] for i in self.sent if i in self.seen]


def _latency(ctx: Context, ns: Namespace, rate: float) -> dict[str, Any]:
    total = max(1, int(rate * ctx.sizes.latency_seconds))
    every = max(1, total // LATENCY_SAMPLE)
    pg_conn = psycopg.connect(ns.dsn, autocommit=True)
    es = es_client(ns.config.search)

    def in_pg(ids: list[str]) -> set[str]:
        rows = pg_conn.execute("SELECT id FROM users WHERE id = ANY(%s)", (ids,)).fetchall()
        return {row[0] for row in rows}

    def in_search(ids: list[str]) -> set[str]:
        found = es.search(index=ns.index_names.alias, query={"terms": {"user_id": ids}},
                          size=len(ids), source=False)
        return {hit["_id"] for hit in found.body["hits"]["hits"]}

    followers = {"postgres": _Follower(in_pg, PG_POLL_S), "search": _Follower(in_search, ES_POLL_S)}
    for follower in followers.values():
        follower.start()
    out, topic, partitions = producer(ns.kafka), ns.catalogue.commands.name, ns.config.partitions
    ctx.progress.begin(f"latency at {rate:,.0f} commands/s", total)
    pacer = Pacer(rate)
    try:
        for number in range(total):
            pacer.wait()
            stream_id, value, headers = command_record("l", number)
            if number % every == 0:  # the clock starts as the command is handed to the client
                for follower in followers.values():
                    follower.follow(f"l{number}", time.monotonic())
            send(out, topic, stream_id, value, partition_for(stream_id, partitions), headers)
            ctx.progress.update(number + 1)
        out.flush(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
                len(f.seen) < len(f.sent) for f in followers.values()):
            time.sleep(0.1)
    finally:
        for follower in followers.values():
            follower.done.set()
            follower.join(5)
        pg_conn.close()
        es.close()
    result: dict[str, Any] = {"rate": round(rate, 1), "commands": total,
                              "followed": len(followers["postgres"].sent)}
    for name, follower in followers.items():
        result[name] = _percentiles(follower.latencies())
        result[name]["missing"] = len(follower.sent) - len(follower.seen)
        result[name]["samples_ms"] = [round(v * 1000, 1) for v in follower.latencies()]
    return result
