"""The latency stage: commands at a fixed rate through the running pipeline, each followed one
stamped at issue, processor commit, projector commit and visible (`bench.latency`)."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from bench.context import Context
from bench.infra import Namespace, es_client
from bench.latency import (
    HOPS,
    OBSERVER_FETCH_WAIT_MS,
    POLL_S,
    EventsObserver,
    Poller,
    Stamps,
    budget,
    covered,
)
from bench.measure import StageTimeout
from bench.workload import Pacer, command_record, producer, send
from projections.search.tracking import checkpoint_id, state_index_for
from topics import partition_for

LIGHT_RATE = 10.0
"""Commands per second of the light-load run: 100 ms apart, longer than any batching (the
processor closes a batch after 5 ms idle; the projectors take whatever one fetch returns), so
each command travels alone."""
LATENCY_SAMPLE = 2_000
"""Most ids followed in one run (evenly spread over it)."""
SETTLE_S = 30.0
"""How long, after the last command, the stamps still missing are waited for."""


def run_at(ctx: Context, ns: Namespace, rate: float, tag: str) -> dict[str, Any]:
    """Issue CreateUser commands `<tag><n>` at `rate` for the sizes' latency seconds and follow
    up to `LATENCY_SAMPLE` of them through every stage; percentiles per hop."""
    total = max(1, int(rate * ctx.sizes.latency_seconds))
    every = max(1, total // LATENCY_SAMPLE)
    stamps = Stamps()
    pg = psycopg.connect(ns.live_dsn, autocommit=True)
    es = es_client(ns.config.search)
    alias = ns.index_names.alias
    events = ns.catalogue.events.name
    state_index = state_index_for(sorted(es.indices.get_alias(name=alias).body)[0])
    checkpoint_ids = [checkpoint_id(events, p) for p in range(ns.config.partitions)]

    def in_postgres(ids: list[str]) -> set[str]:
        rows = pg.execute("SELECT id FROM users WHERE id = ANY(%s)", (ids,)).fetchall()
        return {row[0] for row in rows}

    def search_committed(ids: list[str]) -> set[str]:
        positions = stamps.positions(ids)
        if not positions:
            return set()
        # Realtime get: the checkpoint as last written, refreshed or not.
        found = es.mget(index=state_index, ids=checkpoint_ids, source_includes=["offset"])
        checkpoints = {int(doc["_id"].rsplit("|", 1)[1]): int(doc["_source"]["offset"])
                       for doc in found.body["docs"] if doc.get("found")}
        return covered(positions, checkpoints)

    def searchable(ids: list[str]) -> set[str]:
        found = es.search(index=alias, query={"terms": {"user_id": ids}}, size=len(ids),
                          source=False)
        return {hit["_id"] for hit in found.body["hits"]["hits"]}

    threads: list[EventsObserver | Poller] = [
        EventsObserver(stamps, ns.kafka, events, ns.config.partitions),
        Poller(stamps, "postgres", in_postgres, POLL_S["postgres"]),
        Poller(stamps, "search_commit", search_committed, POLL_S["search_commit"]),
        Poller(stamps, "searchable", searchable, POLL_S["searchable"])]
    out, topic, partitions = producer(ns.kafka), ns.catalogue.commands.name, ns.config.partitions
    # Built before the clock runs: the load generator shares the two cores with what it
    # measures, so while commands flow it only hands ready records to the client.
    records = [(stream_id, value, headers, partition_for(stream_id, partitions))
               for stream_id, value, headers in (command_record(tag, n) for n in range(total))]
    for thread in threads:
        thread.start()
    ctx.progress.begin(f"latency at {rate:,.0f} commands/s", total)
    pacer = Pacer(rate)
    try:
        for number, (stream_id, value, headers, partition) in enumerate(records):
            pacer.wait()
            if number % every == 0:  # the clock starts as the command is handed to the client
                stamps.follow(f"{tag}{number}")
            send(out, topic, stream_id, value, partition, headers)
            if number % 100 == 0:
                ctx.progress.update(number + 1)
        out.flush(30)
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline and not stamps.complete():
            _check(threads)
            time.sleep(0.1)
    finally:
        for thread in threads:
            thread.done.set()
            thread.join(5)
        pg.close()
        es.close()
    _check(threads)
    return _result(stamps, rate, total, every)


def _check(threads: list[EventsObserver | Poller]) -> None:
    for thread in threads:
        if thread.error is not None:
            raise StageTimeout(f"latency: {thread.name} failed: {thread.error!r}")


def _result(stamps: Stamps, rate: float, total: int, every: int) -> dict[str, Any]:
    hops = budget(stamps)
    result: dict[str, Any] = {
        "rate": round(rate, 1), "commands": total, "followed": stamps.followed(),
        "follow_every": every,
        "poll_ms": {**{stage: round(s * 1000) for stage, s in POLL_S.items()},
                    "processor_commit": OBSERVER_FETCH_WAIT_MS},
        "hops": hops,
    }
    # The totals the targets and the plot read, with their samples.
    for sink, hop in (("postgres", "issue_to_postgres"), ("search", "issue_to_searchable")):
        samples = stamps.hop(*HOPS[hop])
        result[sink] = {**hops[hop], "samples_ms": [round(v * 1000, 1) for v in samples]}
    return result
