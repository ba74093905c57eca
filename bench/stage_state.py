"""Stage S: the processor's state, in memory and restored, at N streams, against raw reads.

For each N of the mode's sizes, in a namespace of its own: N user snapshots written to the
aggregates topic as the processor writes them (`records.snapshot`: same key, value and
partition), then each read in a fresh process (`bench.state_probe`), one after the other: a
raw read (no decoding), a read decoded into dicts, the processor's restore of every partition
and of one partition alone, and its replica of them all (the users of partitions it does not
own). The topics are deleted on leaving.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

from bench.context import Context
from bench.infra import ROOT, Namespace
from bench.state_probe import PROCESS_TIMEOUT_S
from bench.workload import QUIET, send
from pipeline.domain.users import UserState
from pipeline.processor import records
from pipeline.processor.config import ProcessorConfig, TopicNames
from pipeline.processor.state import StreamState
from topics import partition_for

UPDATED_AT = datetime(2026, 1, 1, tzinfo=UTC)
READS = ("raw", "decode", "restore", "restore_one", "restore_bounded", "replica")
"""Every probe of one N, in order; `restore_one` is the restore of partition 0 alone,
`restore_bounded` the restore of every partition with a tenth of N resident (`spill`)."""


def user_stream(number: int) -> StreamState:
    """A user as the processor holds it after 1-3 accepted commands (mean 2): created, then
    updated; one in ten deactivated. Ids, emails and names as the other stages' (`workload`)."""
    commands = 1 + number % 3
    state = UserState(email=f"st{number}@example.com", name=f"User {number}",
                      active=number % 10 != 9)
    return StreamState(f"user-st{number}", "user", commands, state,
                       tuple(str(uuid.uuid4()) for _ in range(commands)))


def write_snapshots(ctx: Context, ns: Namespace, count: int) -> int:
    """`count` user snapshots on their stream's partition; the value bytes written."""
    catalogue = ns.catalogue
    names = TopicNames(commands=catalogue.commands.name, events=catalogue.events.name,
                       aggregates=catalogue.aggregates.name,
                       command_results=catalogue.command_results.name,
                       commands_dlq=catalogue.commands_dlq.name)
    partitions = ns.config.partitions
    out = Producer({**ns.kafka, "enable.idempotence": True, "linger.ms": 50,
                    "batch.size": 1_000_000, "log_level": QUIET})
    written = 0
    ctx.progress.begin(f"writing {count:,} user snapshots", count)
    for number in range(count):
        stream = user_stream(number)
        record = records.snapshot(stream, names, partition_for(stream.stream_id, partitions),
                                  UPDATED_AT)
        send(out, record.topic, stream.stream_id, record.value or b"", record.partition)
        written += len(record.value or b"")
        if number % 10_000 == 0:
            ctx.progress.update(number)
    if out.flush(300):
        raise RuntimeError("snapshots not delivered")
    ctx.progress.update(count)
    return written


def probe(ns: Namespace, mode: str, partitions: list[int], timeout: float,
          resident: int | None = None) -> dict[str, Any]:
    """One `bench.state_probe` read in a fresh process; its figures."""
    kafka = {key: value for key, value in ns.kafka.items() if key != "logger"}
    request = {"kafka": kafka, "topic": ns.catalogue.aggregates.name,
               "events_topic": ns.catalogue.events.name, "partitions": partitions,
               "partition_count": ns.config.partitions, "mode": mode, "resident": resident}
    finished = subprocess.run(
        [sys.executable, "-m", "bench.state_probe"], cwd=ROOT, input=json.dumps(request),
        capture_output=True, text=True, timeout=timeout, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"state probe {mode} exited {finished.returncode}: "
                           f"{finished.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


def state_at(ctx: Context, count: int) -> dict[str, Any]:
    with Namespace.new(ctx.config, ctx.run_id, f"state{count}") as ns:
        ns.apply_topics()
        partitions = list(range(ns.config.partitions))
        found: dict[str, Any] = {"streams": count, "partitions": len(partitions),
                                 "value_bytes": write_snapshots(ctx, ns, count)}
        for read in READS:
            ctx.progress.begin(f"{count:,} streams: {read} read (own process)", 1)
            mode, chosen = ("restore", [0]) if read == "restore_one" else (read, partitions)
            found[read] = probe(ns, mode, chosen, PROCESS_TIMEOUT_S,
                                resident=max(1, count // 10))
            ctx.progress.update(1)
    restored = found["restore"]
    found["restore_vs_raw"] = _ratio(restored["seconds"], found["raw"]["seconds"])
    found["restore_vs_decode"] = _ratio(restored["seconds"], found["decode"]["seconds"])
    # The processor's deadline bounds its reads, not the freeze after them (`heap.settle`).
    found["within_restore_timeout"] = restored["read_s"] <= ProcessorConfig.restore_timeout_s
    return found


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b > 0 else None


def state(ctx: Context) -> dict[str, Any]:
    """Every N of the mode, smallest first, keyed by N."""
    return {str(count): state_at(ctx, count) for count in ctx.sizes.state_streams}
