"""One read of the aggregates topic in a process of its own, so its resident memory is its own.

`python -m bench.state_probe` reads a JSON request on stdin (`kafka`: client properties, `topic`,
`events_topic`, `partitions`: the partitions to read, `partition_count`: the topic's, `mode`)
and writes one JSON line of figures on stdout. Modes:

- `raw`: a plain read_committed confluent-kafka consumer, `consume(500)` to the end, nothing
  decoded or kept: the Kafka read alone;
- `decode`: the same read, each value `json.loads`-ed into a dict kept by key: the read plus
  JSON, with plain dicts as the cheapest state one could keep;
- `restore`: the processor's own restore, as `Processor._restore` runs it (`heap.tune` as
  `bootstrap` does, `restore` under `heap.paused`, `StateStore.load`, then `heap.settle`);
- `restore_bounded`: the same into a `spill.BoundedStateStore` of `resident` states (the
  request's), as a processor with `CQRS_PROCESSOR_MAX_RESIDENT_STREAMS` restores;
- `replica`: `CustomerReplica.follow` of every partition as not owned: what a processor keeps
  of the users of partitions it does not own.

Resident memory (`VmRSS`, `VmHWM` of /proc/self/status) is read once everything is imported and
before the read, and after it (its consumer closed, the collector run).
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from pipeline.processor import heap
from pipeline.processor.adapters import KafkaPartitionReader, KafkaSnapshotTail
from pipeline.processor.config import ProcessorConfig, TopicNames
from pipeline.processor.replica import CustomerReplica
from pipeline.processor.restore import restore
from pipeline.processor.spill import BoundedStateStore
from pipeline.processor.state import StateStore

MODES = ("raw", "decode", "restore", "restore_bounded", "replica")
TIMEOUT_S = 900.0
"""Longest read: far past the processor's `restore_timeout_s` (60 s), which the figures are
compared with rather than bound by."""
PROCESS_TIMEOUT_S = TIMEOUT_S + 120.0
"""How long `bench.stage_state` waits for a probe's process: its read's bound, plus the start
(imports, clients) and the collection and figures after the read."""
BATCH = 500


def memory_kib() -> dict[str, int]:
    """`VmRSS` and `VmHWM` of this process, in KiB."""
    found: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def processor_config(request: dict[str, Any]) -> ProcessorConfig:
    topic = request["topic"]
    names = TopicNames(commands="unused", events=request["events_topic"], aggregates=topic,
                       command_results="unused", commands_dlq="unused")
    return ProcessorConfig(kafka=dict(request["kafka"]), topics=names,
                           restore_timeout_s=TIMEOUT_S)


def _ends(consumer: Any, topic: str, partitions: list[int]) -> dict[int, int]:
    ends = {}
    for partition in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high > low:
            ends[partition] = high
    return ends


def plain_read(
    config: ProcessorConfig, partitions: list[int], keep: bool
) -> tuple[int, int, dict[bytes, Any]]:
    """(records, value bytes, values kept by key) of a consume(500) read to the high
    watermarks; `keep`: each value decoded into a dict and kept."""
    topic = config.topics.aggregates
    consumer = Consumer(config.reader("baseline"))
    kept: dict[bytes, Any] = {}
    records = size = 0
    try:
        ends = _ends(consumer, topic, partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending = set(ends)
        deadline = time.monotonic() + TIMEOUT_S
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=BATCH, timeout=0.5):
                if message.error() is not None:
                    continue
                value, partition = message.value() or b"", message.partition() or 0
                records += 1
                size += len(value)
                if keep:
                    kept[message.key() or b""] = json.loads(value)
                if (message.offset() or 0) + 1 >= ends.get(partition, 0):
                    pending.discard(partition)
    finally:
        consumer.close()
    return records, size, kept


def processor_restore(config: ProcessorConfig, partitions: list[int],
                      resident: int | None = None) -> dict[str, Any]:
    """`Processor._restore`'s steps: the streams restored and the time each step took; into a
    store bounded to `resident` states in memory when given."""
    heap.tune(config.gc_young_threshold)
    store = StateStore() if resident is None else BoundedStateStore(resident)
    started = time.monotonic()
    with heap.paused():
        restored = restore(KafkaPartitionReader(config.reader("restore")),
                           config.topics.aggregates, partitions, config.restore_timeout_s,
                           config.topics.events, staging=store.staging)
    read_s = time.monotonic() - started
    for partition, found in restored.items():
        store.load(partition, found.streams, found.quarantined)
    del restored
    settled = time.monotonic()
    heap.settle()
    return {"streams": store.stream_count(), "read_s": read_s,
            "settle_s": time.monotonic() - settled, "frozen_objects": gc.get_freeze_count(),
            "_keep": store}


def probe(request: dict[str, Any]) -> dict[str, Any]:
    mode, partitions = request["mode"], list(request["partitions"])
    config = processor_config(request)
    gc.collect()
    tracked_before = len(gc.get_objects())
    before = memory_kib()
    started = time.monotonic()
    found: dict[str, Any] = {}
    if mode in ("raw", "decode"):
        with heap.paused():
            records, size, kept = plain_read(config, partitions, keep=mode == "decode")
        found = {"records": records, "value_bytes": size,
                 "streams": len(kept) if mode == "decode" else records, "_keep": kept}
    elif mode == "restore":
        found = processor_restore(config, partitions)
    elif mode == "restore_bounded":
        found = processor_restore(config, partitions, int(request["resident"]))
        found["resident"] = int(request["resident"])
    elif mode == "replica":
        replica = CustomerReplica(KafkaSnapshotTail(config.reader("replica"),
                                                    config.topics.aggregates))
        replica.follow(int(request["partition_count"]), owned=[], timeout_s=TIMEOUT_S)
        replica.close()
        found = {"streams": replica.user_count(), "_keep": replica}
    else:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    seconds = time.monotonic() - started
    gc.collect()
    after = memory_kib()
    streams = int(found["streams"])
    grown = (after["VmRSS"] - before["VmRSS"]) * 1024
    figures = {key: value for key, value in found.items() if not key.startswith("_")}
    if isinstance(found.get("_keep"), StateStore):
        found["_keep"].close()  # a bounded store's spill file
    return {
        "mode": mode, "partitions": partitions, **figures,
        "seconds": round(seconds, 3),
        "streams_per_s": round(streams / seconds, 1) if seconds > 0 else None,
        "rss_before_mib": round(before["VmRSS"] / 1024, 1),
        "rss_after_mib": round(after["VmRSS"] / 1024, 1),
        "hwm_mib": round(after["VmHWM"] / 1024, 1),
        "rss_bytes_per_stream": round(grown / streams) if streams else None,
        **_objects(found, tracked_before, streams),
    }


def _objects(found: dict[str, Any], tracked_before: int, streams: int) -> dict[str, float]:
    """Objects the collector tracks (containers: not str, int) added per restored stream."""
    if "frozen_objects" not in found or not streams:
        return {}
    return {"tracked_objects_per_stream": round((found["frozen_objects"] - tracked_before)
                                                / streams, 1)}


def main() -> None:
    result = probe(json.loads(sys.stdin.read()))
    for key in ("read_s", "settle_s"):
        if key in result:
            result[key] = round(result[key], 3)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
