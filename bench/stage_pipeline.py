"""The whole pipeline: sustained rate (commands in → rows in PostgreSQL) and latency per stage.

The processor and both projectors run together as subprocesses in one namespace; a warm-up
command is followed through to PostgreSQL and search first, so start-up is never measured. Then
latency at light load (`stage_latency.LIGHT_RATE`), the sustained rate, and latency at half of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg

from bench.context import Context
from bench.infra import Namespace, Worker, es_client
from bench.measure import Sample, StageTimeout
from bench.stage_latency import LIGHT_RATE, run_at
from bench.workload import produce_commands

WARM_UP = "z"
"""The warm-up command's id tag (`z0`); the other runs use `a` (light load), `w` (sustained),
`l` (half load), so no count or lookup of one run sees another's users."""


def pipeline(ctx: Context, sustained_reference: Callable[[], float]) -> dict[str, Any]:
    """Latency at light load, the sustained rate, then latency at half of it (or of
    `sustained_reference()`)."""
    with Namespace.new(ctx.config, ctx.run_id, "e2e") as ns:
        ns.apply_topics()
        ns.create_database()
        roles = {"processor": ["processor"], "projector.postgres": ["project", "postgres"],
                 "projector.search": ["project", "search"]}
        started = [Worker(role, args, ns.env(), ctx.log(f"e2e-{role}"))
                   for role, args in roles.items()]
        try:
            _warm_up(ctx, ns, started)
            light = run_at(ctx, ns, LIGHT_RATE, "a")
            sustained = _sustained(ctx, ns, started)
            rate = sustained["rate"] or sustained_reference()
            latency = {"light": light, "half_load": run_at(ctx, ns, rate / 2, "l")}
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
    produce_commands(ns.kafka, ns.catalogue.commands.name, ns.config.partitions, WARM_UP, 1)
    with psycopg.connect(ns.live_dsn, autocommit=True) as connection:
        ctx.watch(_pg_count(connection, WARM_UP), 1, "warm-up to PostgreSQL", _alive(workers))
    with es_client(ns.config.search) as client:
        def searchable() -> int:
            found = client.count(index=ns.index_names.alias,
                                 query={"term": {"user_id": f"{WARM_UP}0"}},
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
    with psycopg.connect(ns.live_dsn, autocommit=True) as connection:
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
    if first_count >= count:  # all in one poll (a small run): no interval, so from the produce
        first_at, first_count = 0.0, 0
    steady = (count - first_count) / (elapsed - first_at) if elapsed > first_at else 0.0
    return {"count": count - first_count, "seconds": round(elapsed - first_at, 3),
            "rate": round(steady, 1), "end_to_end_seconds": round(elapsed, 3),
            "end_to_end_rate": round(count / elapsed, 1), "produce_seconds": round(produced_s, 3),
            "series": [[round(t, 3), n] for t, n in series]}
