"""Stage K (raw confluent-kafka consume → produce loop) and the processor at three intervals."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer

from bench.context import Context
from bench.infra import Namespace, Worker
from bench.measure import from_log, timed
from bench.workload import BATCH, QUIET, command_size, produce_commands, send
from pipeline.processor.config import ProcessorConfig

MAX_BATCH_SIZE = 10_000
"""Cap on an interval run's batch: one transaction of it stays well inside the processor's
10 s `transaction.timeout.ms`, even on a loaded machine."""
INTERVALS_MS = (10, 100, 1000)
DEFAULT_BATCH_SIZE, DEFAULT_BATCH_MS = ProcessorConfig.batch_size, ProcessorConfig.batch_ms
"""`cqrs processor`'s defaults."""


def raw_kafka(ctx: Context) -> dict[str, Any]:
    """K: pre-produce N messages of a command's size, then consume 500 at a time and produce each
    to a second topic, no decoding, no transactions; timed from the first non-empty consume to
    the flush of the last produce."""
    count = ctx.sizes.kafka_messages
    size = command_size()
    with Namespace.new(ctx.config, ctx.run_id, "k") as ns:
        ns.apply_topics()
        source, sink = ns.catalogue.commands.name, ns.catalogue.events.name
        partitions = ns.config.partitions
        out = Producer({**ns.kafka, "linger.ms": 5, "enable.idempotence": True,
                        "log_level": QUIET})
        payload = b"x" * size
        for number in range(count):
            send(out, source, f"user-k{number}", payload, number % partitions)
        out.flush(120)
        consumer = Consumer({**ns.kafka, "group.id": f"{ns.prefix}k", "enable.auto.commit": False,
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([source])
        done, started, series = 0, 0.0, []
        ctx.progress.begin("K: raw consume → produce", count)
        while done < count:
            messages = consumer.consume(num_messages=BATCH, timeout=1.0)
            if messages and not started:
                started = ctx.clock()
            for message in messages:
                if message.error() is None:
                    send(out, sink, "k", message.value() or b"", message.partition() or 0)
                    done += 1
            if started:
                series.append((ctx.clock() - started, done))
            ctx.progress.update(done)
            ctx.check_deadline("K")
        out.flush(120)
        consumer.close()
        measured = timed(count, started, series)
    return {"message_bytes": size, **measured.as_dict()}


def processor_rates(ctx: Context) -> dict[str, Any]:
    """The processor (exactly once) as a subprocess over pre-produced commands, timed by its own
    log from partitions assigned (start-up and restore done) to the commit of the last command.

    First at the CLI's defaults (500 commands, 100 ms: as it runs in the pipeline stage). Then at
    transactions of about 10, 100 and 1000 ms: `--batch-ms` is only the consume timeout, and
    with a backlog a batch fills from the prefetched records long before it, so the batch size
    is what sets a transaction's length: it is sized to the defaults run's rate times the interval
    (capped), with `--batch-ms` = the interval. `mean_transaction_ms` is what each run got.
    """
    results: dict[str, Any] = {"defaults": _processor_once(ctx, DEFAULT_BATCH_MS,
                                                           DEFAULT_BATCH_SIZE)}
    rate = float(results["defaults"]["rate"])
    for interval in INTERVALS_MS:
        size = min(MAX_BATCH_SIZE, max(1, round(rate * interval / 1000)))
        results[f"{interval}ms"] = _processor_once(ctx, interval, size)
    results["at_least_once"] = ("n/a: the processor offers no at-least-once mode "
                                "(pipeline/processor/config.py: transactional only)")
    return results


def _processor_once(ctx: Context, interval: int, batch_size: int) -> dict[str, Any]:
    count = ctx.sizes.processor_commands
    label = f"p{interval}x{batch_size}"
    with Namespace.new(ctx.config, ctx.run_id, label) as ns:
        ns.apply_topics()
        produce_commands(ns.kafka, ns.catalogue.commands.name, ns.config.partitions, "p", count)
        worker = Worker("processor", ["processor", "--batch-ms", str(interval), "--batch-size",
                                      str(batch_size)], ns.env(), ctx.log(label))
        try:
            ctx.progress.begin(f"processor, {interval} ms / {batch_size} commands", count)
            ctx.watch(worker.processor_accepted, count, f"processor {interval} ms", worker.alive)
            measured = from_log(worker.points, count, worker.assigned_at)
        finally:
            worker.stop()
        ctx.memory("processor", worker)
        batches = worker.totals.get("batches", 0)
    return {"batch_ms": interval, "batch_size": batch_size,
            "transactions": batches,
            "mean_commands_per_transaction": round(count / batches, 1) if batches else None,
            "mean_transaction_ms": round(measured.seconds * 1000 / batches, 1) if batches else None,
            **measured.as_dict()}
