"""An in-memory Kafka for the processor, with faults on demand (the `MockTransport` of the ports).

`MemoryBroker` holds topics of partitions, one consumer group's offsets and transactional ids,
and builds every port of `ports.ProcessorPorts` over them: `broker.processor(config)` is a
`Processor` with no Kafka at all. What it keeps of Kafka's semantics:

- read_committed: a transaction's records (and its offsets) become visible at its commit, all at
  once; an aborted or abandoned transaction's never do.
- group offsets move only with a committed transaction (`send_offsets` + `commit`), and only
  when the offsets were sent with the group's current generation (`memory_group`): a member that
  kept a batch open across a rebalance gets an `AbortableFault` from `send_offsets`, or from
  `commit` when the rebalance came between the two. (The real broker accepts offsets sent before
  the rebalance and makes the new owner's offset fetch wait for that transaction, KIP-447
  `require_stable`; refusing at commit is the single-threaded fake's way to the same guarantee:
  never two commits of one offset range.)
- fencing: a producer started with a transactional id fences every older one of that id, whose
  next call raises `ProducerFenced`; `reset` starts over with a new epoch.
- after a `FatalFault` only `reset` may be called; any other misuse raises `ProducerMisuse`.

`broker.inject(Fault(...))` makes a coming call fail: abortable, fatal, fenced, or a commit
whose outcome is unknown (raised as a `FatalFault`) though it did (`commit_landed`) or did not
(`commit_lost`) happen; at the `init` point (a producer's start or `reset`, `init_transactions`)
a `fatal` fault leaves the producer unusable, as a process whose start failed. Each fault fires
`times` times (`None`: always) on the calls of its `point` that `matches` (produce only) after
skipping the first `skip` of them.
`broker.fail_reads(topic, error)` makes the next read of `topic` by the `PartitionReader` (a
restore or a rebuild) raise `error` once it has yielded what it holds, as a read that does not
reach its end in time would; `broker.reads` lists every read (topic, partitions), and
`broker.offset_fetches` every fetch of the group's committed offsets (partitions).
`broker.stall(Stall(...))` runs an action (a rebalance, another processor's steps) in the middle
of one producer's call, as a process that stalls there while the group moves on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.processor.config import ProcessorConfig
from pipeline.processor.faults import AbortableFault, FatalFault, ProducerFenced
from pipeline.processor.loop import Clock, Processor, utc_now
from pipeline.processor.memory_faults import Fault, FaultKind, FaultPoint, Stall
from pipeline.processor.memory_group import MemoryGroup
from pipeline.processor.memory_readers import (
    MemoryCommandSource,
    MemoryPartitionReader,
    MemorySnapshotTail,
)
from pipeline.processor.metrics import ProcessorMetrics
from pipeline.processor.ports import ProcessorPorts, TopicPosition
from pipeline.processor.records import InboundRecord, OutboundRecord
from pipeline.processor.replica import CustomerReplica

__all__ = [
    "Fault", "FaultKind", "FaultPoint", "MemoryBroker", "MemoryProducer", "ProducerMisuse",
    "Stall", "drain",
]


class ProducerMisuse(Exception):
    """The loop used a producer as Kafka forbids (a bug, never a fault to recover from)."""


@dataclass
class _Transaction:
    records: list[OutboundRecord] = field(default_factory=list)
    offsets: list[TopicPosition] = field(default_factory=list)
    group_metadata: Any = None


class MemoryBroker:
    """Topics (committed records only), one group's offsets, transactional ids, pending faults."""

    def __init__(self, topics: list[str], partitions: int) -> None:
        self.partitions = partitions
        self._logs: dict[str, list[list[InboundRecord]]] = {
            topic: [[] for _ in range(partitions)] for topic in topics
        }
        self._offsets: dict[tuple[str, int], int] = {}
        self._epochs: dict[str, int] = {}
        self.faults: list[Fault] = []
        self.fired: list[Fault] = []
        self.reads: list[tuple[str, list[int]]] = []
        self.offset_fetches: list[list[int]] = []
        self._read_faults: dict[str, list[Exception]] = {}
        self.group = MemoryGroup(partitions)
        self._stalls: list[Stall] = []
        self._stalling = False
        self.stale_refusals = 0

    @classmethod
    def for_config(cls, config: ProcessorConfig, partitions: int) -> MemoryBroker:
        names = config.topics
        return cls(
            [names.commands, names.events, names.aggregates, names.command_results,
             names.commands_dlq],
            partitions,
        )

    def append(
        self, topic: str, partition: int, key: bytes | None, value: bytes | None,
        headers: list[tuple[str, bytes | None]] | None = None,
    ) -> InboundRecord:
        """A committed record written outside any transaction (a client sending a command)."""
        log = self._logs[topic][partition]
        record = InboundRecord(topic, partition, len(log), key, value, list(headers or []))
        log.append(record)
        return record

    def records(self, topic: str, partition: int | None = None) -> list[InboundRecord]:
        """The committed records of `topic` (one partition, or all in partition order)."""
        chosen = range(self.partitions) if partition is None else [partition]
        return [record for index in chosen for record in self._logs[topic][index]]

    def read(
        self, topic: str, partition: int, start: int, stop: int | None = None
    ) -> list[InboundRecord]:
        """The committed records of one partition from offset `start` (up to `stop`), without
        copying the rest of its log (what the readers take on each call)."""
        return self._logs[topic][partition][start:stop]

    def end(self, topic: str, partition: int) -> int:
        return len(self._logs[topic][partition])

    def committed(self, topic: str, partition: int) -> int | None:
        return self._offsets.get((topic, partition))

    def drained(self, topic: str) -> bool:
        """Whether the group has committed every record of `topic`."""
        return all(
            (self.committed(topic, p) or 0) == self.end(topic, p) for p in range(self.partitions)
        )

    def inject(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def fault_at(self, point: FaultPoint, record: OutboundRecord | None = None) -> Fault | None:
        for fault in self.faults:
            if fault.fires(point, record):
                self.fired.append(fault)
                return fault
        return None

    def stall(self, *stalls: Stall) -> None:
        self._stalls.extend(stalls)

    def stalled(self, transactional_id: str, point: FaultPoint) -> None:
        """Run the first stall due at this call of this producer, if any (never nested)."""
        if self._stalling:
            return
        for stall in self._stalls:
            if (stall.transactional_id, stall.point) != (transactional_id, point):
                continue
            if stall.skip > 0:
                stall.skip -= 1
                return
            self._stalls.remove(stall)
            self._stalling = True
            try:
                stall.action()
            finally:
                self._stalling = False
            return

    def fail_reads(self, topic: str, *errors: Exception) -> None:
        """The next `len(errors)` reads of `topic` raise these, in order (see the docstring)."""
        self._read_faults.setdefault(topic, []).extend(errors)

    def read_fault(self, topic: str, partitions: list[int]) -> Exception | None:
        """Note a read of `topic`; the error it must end with, if one is pending."""
        self.reads.append((topic, list(partitions)))
        pending = self._read_faults.get(topic)
        return pending.pop(0) if pending else None

    def start_producer(self, transactional_id: str) -> int:
        """A new epoch of `transactional_id`: every older producer of it is fenced."""
        self._epochs[transactional_id] = self._epochs.get(transactional_id, 0) + 1
        return self._epochs[transactional_id]

    def epoch(self, transactional_id: str) -> int:
        return self._epochs.get(transactional_id, 0)

    def accepts(self, transaction: _Transaction) -> bool:
        """Whether the group takes the transaction's offsets (none, or of its generation)."""
        return not transaction.offsets or self.group.current(transaction.group_metadata)

    def stale(self, group_metadata: Any) -> AbortableFault:
        """The error of offsets sent with a stale generation (counted in `stale_refusals`)."""
        self.stale_refusals += 1
        return AbortableFault(f"ILLEGAL_GENERATION: offsets of a stale member {group_metadata}")

    def commit(self, transaction: _Transaction) -> None:
        """Make a transaction's records and offsets visible at once."""
        if not self.accepts(transaction):
            raise self.stale(transaction.group_metadata)
        for output in transaction.records:
            self.append(output.topic, output.partition, output.key, output.value,
                        list(output.headers))
        for position in transaction.offsets:
            self._offsets[(position.topic, position.partition)] = position.offset

    def producer(self, config: dict[str, Any]) -> MemoryProducer:
        """A `ports.ProducerFactory`: the transactional id comes from the producer config."""
        return MemoryProducer(self, str(config.get("transactional.id", "memory")))

    def ports(self, config: ProcessorConfig) -> ProcessorPorts:
        return ProcessorPorts(
            commands=MemoryCommandSource(self, config.topics.commands),
            producer_factory=self.producer,
            reader=MemoryPartitionReader(self),
            replica=CustomerReplica(MemorySnapshotTail(self, config.topics.aggregates)),
            partition_count=lambda: self.partitions,
        )

    def processor(
        self, config: ProcessorConfig, clock: Clock = utc_now,
        metrics: ProcessorMetrics | None = None,
    ) -> Processor:
        return Processor(config, self.ports(config), clock, metrics)


class MemoryProducer:
    """`ports.ProducerPort` over a `MemoryBroker`: one transaction at a time, faults on demand."""

    def __init__(self, broker: MemoryBroker, transactional_id: str) -> None:
        self._broker = broker
        self.transactional_id = transactional_id
        self._open: _Transaction | None = None
        self._broken = False
        self._epoch = self._init()

    def _init(self) -> int:
        """init_transactions: a new epoch of the id, or the `init` fault due."""
        self._broker.stalled(self.transactional_id, "init")
        fault = self._broker.fault_at("init")
        if fault is not None:
            self._broken = True
            raise fault.error()
        return self._broker.start_producer(self.transactional_id)

    def _call(self, point: FaultPoint, record: OutboundRecord | None = None) -> None:
        self._broker.stalled(self.transactional_id, point)
        if self._broken:
            raise ProducerMisuse(f"{point} after a fatal fault: only reset is allowed")
        if self._broker.epoch(self.transactional_id) != self._epoch:
            raise ProducerFenced(f"{self.transactional_id}: fenced by a newer instance")
        if (point == "begin") == (self._open is not None):
            raise ProducerMisuse(f"{point} {'inside' if self._open else 'outside'} a transaction")
        fault = self._broker.fault_at(point, record)
        if fault is not None:
            self._fail(fault)

    def _fail(self, fault: Fault) -> None:
        error = fault.error()
        open_ = self._open
        if fault.kind == "commit_landed" and open_ is not None and self._broker.accepts(open_):
            self._broker.commit(open_)
        if isinstance(error, FatalFault):
            self._open, self._broken = None, True
        raise error

    def begin(self) -> None:
        self._call("begin")
        self._open = _Transaction()

    def produce(self, record: OutboundRecord) -> None:
        self._call("produce", record)
        assert self._open is not None
        if not 0 <= record.partition < self._broker.partitions:
            raise AbortableFault(f"unknown partition {record.partition}", implicates_record=True)
        self._open.records.append(record)

    def send_offsets(self, offsets: list[TopicPosition], group_metadata: Any) -> None:
        self._call("send_offsets")
        assert self._open is not None
        if not self._broker.group.current(group_metadata):
            raise self._broker.stale(group_metadata)
        self._open.offsets.extend(offsets)
        self._open.group_metadata = group_metadata

    def commit(self) -> None:
        self._call("commit")
        assert self._open is not None
        if not self._broker.accepts(self._open):
            raise self._broker.stale(self._open.group_metadata)
        transaction, self._open = self._open, None
        self._broker.commit(transaction)

    def abort(self) -> None:
        self._call("abort")
        self._open = None

    def reset(self) -> None:
        """A new producer of the same id: what was open is abandoned, older epochs fenced."""
        self._open, self._broken = None, False
        self._epoch = self._init()


def drain(processor: Processor, broker: MemoryBroker, max_steps: int = 1000) -> int:
    """Step a started `processor` until its group committed every command; the steps taken."""
    topic = processor.config.topics.commands
    for steps in range(max_steps):
        if broker.drained(topic):
            return steps
        processor.step()
    raise AssertionError(f"not drained in {max_steps} steps: {processor.counters}")
