"""A 3-node Kafka cluster of the native runner for one test module, and the node-level faults.

The cluster runs in its own temporary state directory on free ports (never the services of
`cqrs services up`), each node with a 256 MiB heap, and is stopped and removed even when a step
fails: `running_cluster()` is the body of a module fixture.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient

from cqrs.services import Layout, Runner
from cqrs.services.process import port_open, read_pid

NODES = 3
HEAP_MB = 256
TRANSACTION_STATE = "__transaction_state"
CONSUMER_OFFSETS = "__consumer_offsets"


def ephemeral_ports_start() -> int:
    """The first port of the kernel's range for outgoing connections (Linux; else 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports() -> tuple[int, int]:
    """A broker and a controller base port such that all three nodes' ports are free, below
    the ephemeral range: while a node is down, a client reconnecting to it may be given its
    port as its own local port (or connect to itself there), and the node could not restart."""
    for _ in range(50):
        base = random.randrange(20000, min(ephemeral_ports_start(), 40000) - 10, 10)
        ports = [base + offset for offset in range(2 * NODES)]
        if not any(port_open("127.0.0.1", port) for port in ports):
            return base, base + 1
    raise RuntimeError("no free range of ports for the cluster")


def java_hash(text: str) -> int:
    """Java's `String.hashCode` (a signed 32-bit int) of an ASCII/BMP string."""
    value = 0
    for char in text:
        value = (31 * value + ord(char)) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def transaction_state_partition(transactional_id: str, partitions: int) -> int:
    """The `__transaction_state` partition whose leader coordinates `transactional_id`
    (Kafka's `Utils.abs(id.hashCode()) % partitions`; `abs(MIN_VALUE)` is 0 there)."""
    hashed = java_hash(transactional_id)
    return (0 if hashed == -(1 << 31) else abs(hashed)) % partitions


def wait(what: str, check: Callable[[], bool], timeout: float) -> float:
    """Seconds until `check()` held; metadata calls may raise while leadership moves."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s")


@dataclass
class Cluster:
    layout: Layout
    log: list[str] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.layout.kafka_bootstrap

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})

    def runner(self, names: list[str]) -> Runner:
        return Runner(self.layout, names)

    def pid(self, node: int) -> int:
        service = self.runner([f"kafka-{node}"]).services[0]
        pid = read_pid(self.layout.pid_file(service.name), service.owns)
        assert pid is not None, f"node {node} is not running"
        return pid

    def signal(self, node: int, sig: signal.Signals) -> None:
        """`sig` to every process of node `node`'s group."""
        os.killpg(self.pid(node), sig)

    def up(self, node: int) -> None:
        """Start node `node` if it is not running, and wait until it is ready."""
        self.runner([f"kafka-{node}"]).up(self.log.append)

    def down(self, node: int) -> None:
        """Stop node `node` as `services down` does (SIGTERM: a controlled shutdown)."""
        assert self.runner([f"kafka-{node}"]).down(self.log.append), f"node {node} still runs"

    def leader(self, topic: str, partition: int) -> int:
        metadata = self.admin().list_topics(topic=topic, timeout=10)
        return int(metadata.topics[topic].partitions[partition].leader)

    def coordinator(self, transactional_id: str) -> int:
        """The node that coordinates `transactional_id`'s transactions now (the leader of its
        `__transaction_state` partition; a broker may not know the topic for a moment after
        the first producer created it)."""
        found: list[int] = []

        def known() -> bool:
            metadata = self.admin().list_topics(topic=TRANSACTION_STATE, timeout=10)
            partitions = metadata.topics[TRANSACTION_STATE].partitions
            number = transaction_state_partition(transactional_id, len(partitions))
            found.append(int(partitions[number].leader))
            return found[-1] > 0

        wait(f"the coordinator of {transactional_id}", known, 30)
        return found[-1]

    def isr_sizes(self, topics: Iterable[str]) -> dict[tuple[str, int], int]:
        metadata = self.admin().list_topics(timeout=5)
        return {(topic, number): len(partition.isrs)
                for topic in topics
                for number, partition in metadata.topics[topic].partitions.items()}

    def wait_in_sync(self, topics: Iterable[str], timeout: float = 90) -> float:
        """Seconds until every partition of `topics` has all three replicas in sync."""
        names = list(topics)
        return wait("every replica back in sync",
                    lambda: set(self.isr_sizes(names).values()) == {NODES}, timeout)


@contextmanager
def running_cluster(prefix: str = "cqrs-kafka-cluster-") -> Iterator[Cluster]:
    """A started 3-node cluster; on exit every node is stopped and its state removed."""
    state = Path(tempfile.mkdtemp(prefix=prefix))
    broker, controller = free_ports()
    layout = Layout(state_dir=state, cache_dir=Layout.from_env().cache_dir, kafka_port=broker,
                    kafka_controller_port=controller, kafka_nodes=NODES, kafka_heap_mb=HEAP_MB)
    found = Cluster(layout)
    runner = Runner(layout, ["kafka"])
    try:
        started = time.monotonic()
        runner.up(found.log.append)
        found.log.append(f"cluster up in {time.monotonic() - started:.1f}s")
        yield found
    finally:
        stopping = time.monotonic()
        for node in layout.kafka_node_ids:  # a SIGSTOPped node would never stop
            with suppress(AssertionError, ProcessLookupError):
                found.signal(node, signal.SIGCONT)
        gone = runner.down(found.log.append)
        print(f"cluster down in {time.monotonic() - stopping:.1f}s", *found.log, sep="\n")
        shutil.rmtree(state, ignore_errors=True)
        assert gone, "a node of the test cluster is still running"
