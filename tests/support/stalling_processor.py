"""`cqrs processor` whose producer stops its own process inside a transaction, on demand.

`python -m tests.support.stalling_processor processor --instance-id 0 ...` runs the real command
line with one seam replaced (`Bootstrap(processor=...)`): the transactional producer. While the
file named by `CQRS_TEST_STALL_FILE` exists, the first transaction whose offsets include the
partition the file names stops the process with SIGSTOP right after `send_offsets` returned,
before `commit`: its offsets are pending in the group (TxnOffsetCommit accepted with the
generation it had), its transaction is open, and the test decides when it resumes (SIGCONT).
The file is removed first, so it stalls once per arming; a line `{"event": "stalling", ...}`
names the partition and offsets just before the stop.

With `CQRS_TEST_STALL_HOLD=1` (read at start) the producer keeps each transaction's records in the
client until its commit flushes them (`linger.ms` far longer than a batch): a stall then begins
after the offsets reached the group coordinator and before any record of the transaction reached
a partition leader, the narrowest case of the window.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cqrs.bootstrap import Bootstrap
from cqrs.cli import app
from pipeline.processor import Processor, ProcessorConfig, heap
from pipeline.processor.bootstrap import kafka_ports
from pipeline.processor.ports import ProducerPort, TopicPosition
from pipeline.processor.transactions import TransactionalProducer

STALL_FILE = "CQRS_TEST_STALL_FILE"
HOLD = "CQRS_TEST_STALL_HOLD"
HOLD_LINGER_MS = 5000


def _armed() -> dict[str, Any] | None:
    path = os.environ.get(STALL_FILE)
    if not path or not Path(path).exists():
        return None
    arming: dict[str, Any] = json.loads(Path(path).read_text() or "{}")
    return arming


class StallingProducer(TransactionalProducer):
    """The real sink; stops the process between `send_offsets` and `commit` when armed."""

    def send_offsets(self, offsets: list[TopicPosition], group_metadata: Any) -> None:
        super().send_offsets(offsets, group_metadata)
        arming = _armed()
        if arming is None or arming.get("partition") not in {o.partition for o in offsets}:
            return
        Path(os.environ[STALL_FILE]).unlink()
        line = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": "stalling",
            "partition": arming["partition"],
            "offsets": {o.partition: o.offset for o in offsets},
            "pid": os.getpid(),
        }
        sys.stderr.write(json.dumps(line) + "\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSTOP)


def stalling_producer(config: dict[str, Any]) -> ProducerPort:
    if os.environ.get(HOLD) == "1":
        config = {**config, "linger.ms": HOLD_LINGER_MS}
    return StallingProducer(config)


def stalling_processor(config: ProcessorConfig) -> Processor:
    """`kafka_processor`, its producer a `StallingProducer`."""
    heap.tune(config.gc_young_threshold)
    ports = replace(kafka_ports(config), producer_factory=stalling_producer)
    return Processor(config, ports)


if __name__ == "__main__":
    app(obj=Bootstrap(processor=stalling_processor))
