"""Projector stages: each projector against its raw sink baseline, the hand-written projector,
and replay from the beginning; all over pre-produced UserCreated events."""

from __future__ import annotations

from typing import Any

from bench.context import Context
from bench.handwritten import handwritten_projector
from bench.infra import Namespace, Worker
from bench.measure import from_log
from bench.sinks import es_baseline, pg_baseline, user_row
from bench.workload import produce_events, user_event


def run_projector(ctx: Context, ns: Namespace, name: str, count: int, label: str) -> dict[str, Any]:
    """`cqrs project <name>` from an empty store over `count` events already on the topic;
    timed by its log from the first batch to the one that accounts for the last event (the
    first batch's events excluded, so start-up is not measured)."""
    worker = Worker(f"projector.{name}", ["project", name], ns.env(), ctx.log(label))
    try:
        ctx.progress.begin(f"{name} projector ({label})", count)
        ctx.watch(worker.projector_consumed, count, f"{name} projector", worker.alive)
        measured = from_log(worker.points, count)
    finally:
        worker.stop()
    ctx.memory(f"projector.{name}", worker)
    return measured.as_dict()


def postgres(ctx: Context) -> dict[str, Any]:
    count = ctx.sizes.sink_events
    events = [user_event("g", number) for number in range(count)]
    result: dict[str, Any] = {"events": count}
    with Namespace.new(ctx.config, ctx.run_id, "pgraw") as raw:
        ctx.progress.begin("PostgreSQL raw upsert baseline", 1)
        result["baseline"] = pg_baseline(raw.create_database(migrate=True),
                                         [user_row(e) for e in events], ctx.clock)
    with Namespace.new(ctx.config, ctx.run_id, "pg") as ns:
        ns.apply_topics()
        produce_events(ns.kafka, ns.catalogue.events.name, ns.config.partitions, events)
        ns.create_database()
        result["projector"] = run_projector(ctx, ns, "postgres", count, "pg-projector")
        with Namespace.new(ctx.config, ctx.run_id, "hand") as hand:
            # Same events, an empty database of its own, the same store start (migrations).
            dsn = hand.create_database()
            ctx.progress.begin("hand-written projector (same store work, no Faust)", count)
            result["handwritten"] = handwritten_projector(
                ns.kafka, ns.catalogue.events.name, ns.catalogue.projection_dlq("postgres").name,
                f"{ns.prefix}handwritten", dsn, ns.config.partitions, count,
                ctx.progress.update)
    return result


def search(ctx: Context) -> dict[str, Any]:
    count = ctx.sizes.sink_events
    events = [user_event("s", number) for number in range(count)]
    result: dict[str, Any] = {"events": count}
    with Namespace.new(ctx.config, ctx.run_id, "esraw") as raw:
        ctx.progress.begin("Elasticsearch raw bulk baseline", 1)
        index = f"{raw.index_names.alias}-raw"
        result["baseline"] = es_baseline(ctx.config.search, index, events, ctx.clock).as_dict()
    with Namespace.new(ctx.config, ctx.run_id, "es") as ns:
        ns.apply_topics()
        produce_events(ns.kafka, ns.catalogue.events.name, ns.config.partitions, events)
        result["projector"] = run_projector(ctx, ns, "search", count, "es-projector")
    return result


def replay(ctx: Context) -> dict[str, Any]:
    """Each projector started over a pre-filled events topic with an empty store."""
    count = ctx.sizes.replay_events
    result: dict[str, Any] = {"events": count}
    with Namespace.new(ctx.config, ctx.run_id, "replay") as ns:
        ns.apply_topics()
        ctx.progress.begin("producing the replay log", 1)
        produce_events(ns.kafka, ns.catalogue.events.name, ns.config.partitions,
                       (user_event("r", number) for number in range(count)))
        ns.create_database()
        for name in ("postgres", "search"):
            result[name] = run_projector(ctx, ns, name, count, f"replay-{name}")
    return result
