"""Helpers to run the aggregate processor against a real broker: topics, commands, reading back.

Also a throughput probe: `python -m tests.support.processor throughput --commands 20000`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from pipeline.processor import Processor, ProcessorConfig, TopicNames
from pipeline.processor.bootstrap import kafka_processor
from topics import Catalogue, apply, partition_for

ROOT = Path(__file__).resolve().parents[2]


def topic_names(catalogue: Catalogue) -> TopicNames:
    return TopicNames(
        catalogue.commands.name,
        catalogue.events.name,
        catalogue.aggregates.name,
        catalogue.command_results.name,
        catalogue.commands_dlq.name,
    )


@contextmanager
def topics_for(kafka_config: dict[str, str], prefix: str, partitions: int) -> Iterator[Catalogue]:
    """Create the catalogue's topics under `prefix`, and delete them afterwards."""
    catalogue = Catalogue(prefix=prefix, partitions=partitions, replication_factor=1)
    admin = AdminClient(kafka_config)
    report = apply(admin, catalogue)
    assert report.ok, report
    try:
        yield catalogue
    finally:
        futures = admin.delete_topics([spec.name for spec in catalogue.specs()])
        for future in futures.values():
            future.exception(30)


def command(
    type_: str,
    aggregate_id: str,
    data: dict[str, Any] | None = None,
    command_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "command_id": command_id or uuid.uuid4().hex,
        "type": type_,
        "aggregate_id": aggregate_id,
        "data": data or {},
        "issued_at": "2024-05-01T00:00:00+00:00",
        **fields,
    }


def stream_of(document: dict[str, Any]) -> str:
    prefix = "order" if "Order" in str(document.get("type")) else "user"
    return f"{prefix}-{document.get('aggregate_id')}"


def produce(
    kafka_config: dict[str, str],
    topic: str,
    values: Iterable[dict[str, Any] | bytes],
    partitions: int,
) -> int:
    """Produce commands on their stream's murmur2 partition (raw bytes go to partition 0)."""
    producer = Producer({**kafka_config, "enable.idempotence": True, "linger.ms": 20})
    count = 0
    for value in values:
        if isinstance(value, bytes):
            key, raw, partition = b"raw", value, 0
        else:
            stream_id = stream_of(value)
            key, raw = stream_id.encode(), json.dumps(value).encode()
            partition = partition_for(stream_id, partitions)
        while True:
            try:
                producer.produce(topic, raw, key, partition=partition)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
    assert producer.flush(60) == 0
    return count


@dataclass(frozen=True)
class Read:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


def read_all(
    kafka_config: dict[str, str], topic: str, committed: bool = True, timeout: float = 60
) -> list[Read]:
    """Every record of `topic` up to its current end (read_committed unless told otherwise)."""
    consumer = Consumer(
        {
            **kafka_config,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "isolation.level": "read_committed" if committed else "read_uncommitted",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    metadata = consumer.list_topics(topic, timeout=30).topics[topic]
    partitions = list(metadata.partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    pending = {p for p in partitions if consumer.get_watermark_offsets(TopicPartition(topic, p))[1]}
    found: list[Read] = []
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            error = message.error()
            if error is None:
                headers = {k: (v or b"").decode() for k, v in message.headers() or []}
                found.append(
                    Read(
                        message.partition(),
                        message.offset(),
                        message.key(),
                        message.value(),
                        headers,
                    )
                )
            elif error.code() == KafkaError._PARTITION_EOF:
                pending.discard(message.partition())
    consumer.close()
    assert not pending, f"{topic}: partitions {pending} not read to the end"
    return found


def wait_for(
    kafka_config: dict[str, str], topic: str, count: int, timeout: float = 90
) -> list[Read]:
    """Read `topic` (committed) until it holds at least `count` records."""
    deadline = time.monotonic() + timeout
    while True:
        found = read_all(kafka_config, topic)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(1)


def processor_config(
    kafka_config: dict[str, str], catalogue: Catalogue, instance_id: str = "0", **kw: Any
) -> ProcessorConfig:
    return ProcessorConfig(
        kafka=dict(kafka_config),
        topics=topic_names(catalogue),
        prefix=catalogue.prefix,
        instance_id=instance_id,
        **kw,
    )


@contextmanager
def running_in_thread(config: ProcessorConfig) -> Iterator[Processor]:
    """Run a processor in a thread of this process; stopped (batch finished) on exit."""
    processor = kafka_processor(config)
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            processor.run(stop)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield processor
    finally:
        stop.set()
        thread.join(60)
        assert not thread.is_alive(), "processor thread did not stop"
        assert not errors, errors


class ProcessorProcess:
    """`python -m cqrs processor` as a subprocess, its JSON log in `log_path`; metrics and health
    on `metrics_port` (default 0: not served, so several run on one host); `env` adds settings
    (`CQRS_...`) to the environment's."""

    def __init__(
        self, kafka_config: dict[str, str], catalogue: Catalogue, log_path: Path, instance: str,
        metrics_port: int = 0, env: dict[str, str] | None = None,
    ) -> None:
        environment = {
            **os.environ,
            "CQRS_KAFKA_BOOTSTRAP": kafka_config["bootstrap.servers"],
            "CQRS_TOPIC_PREFIX": catalogue.prefix,
            "CQRS_PARTITIONS": str(catalogue.partitions),
            "CQRS_REPLICATION_FACTOR": str(catalogue.replication_factor),
            **(env or {}),
        }
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "cqrs", "processor", "--instance-id", instance,
                 "--metrics-port", str(metrics_port)],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=log,
            )

    def stop(self, timeout: float = 60) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(30)

    def log(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


def owned(lines: list[dict[str, Any]]) -> set[int] | None:
    """The partitions a processor's log says it owns after its last rebalance (`None` before
    its first assignment). Rebalances are cooperative: `assigned` names the partitions added
    and every one owned after it, `revoked` those taken away."""
    found: set[int] | None = None
    for line in lines:
        if line.get("event") == "assigned":
            found = set(line.get("owned", (found or set()) | set(line["partitions"])))
        elif line.get("event") == "revoked" and found is not None:
            found -= set(line["partitions"])
    return found


def throughput(kafka_config: dict[str, str], commands: int, partitions: int) -> float:
    """Commands per second of one in-process processor over `commands` CreateUser commands."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    with topics_for(kafka_config, prefix, partitions) as catalogue:
        documents = (
            command("CreateUser", f"u{i}", {"email": f"u{i}@example.com", "name": f"User {i}"})
            for i in range(commands)
        )
        produce(kafka_config, catalogue.commands.name, documents, partitions)
        started = time.monotonic()
        with running_in_thread(processor_config(kafka_config, catalogue)) as processor:
            while processor.counters.accepted < commands:
                time.sleep(0.05)
                assert time.monotonic() - started < 600, "throughput run timed out"
            elapsed = time.monotonic() - started
    return commands / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["throughput"])
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("CQRS_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    args = parser.parse_args()
    rate = throughput({"bootstrap.servers": args.bootstrap}, args.commands, args.partitions)
    sys.stdout.write(
        f"{args.commands} CreateUser commands, {args.partitions} partitions, one processor: "
        f"{rate:.0f} commands/s\n"
    )


if __name__ == "__main__":
    main()
