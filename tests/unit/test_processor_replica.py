"""The users replica reads exactly the partitions its process does not own, across rebalances."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime

import pytest

from pipeline.domain import users
from pipeline.processor import Processor, ProcessorConfig, StreamState, TopicNames
from pipeline.processor.memory import MemoryBroker
from pipeline.processor.memory_readers import MemorySnapshotTail
from pipeline.processor.replica import CustomerReplica
from topics import decode_result, encode, partition_for

TOPICS = TopicNames("c", "e", "a", "r", "dlq")
PARTITIONS = 3
NOW = datetime(2024, 5, 1, tzinfo=UTC)
CONFIG = ProcessorConfig(kafka={}, topics=TOPICS, prefix="t.", batch_ms=1, batch_idle_ms=0)
ITEMS = [{"sku": "SKU-1", "quantity": 1, "unit_price": 100}]


def user(user_id: str, version: int = 1, active: bool = True) -> StreamState:
    state = users.UserState(email=f"{user_id}@example.com", name=user_id, active=active)
    return StreamState(f"user-{user_id}", "user", version, state)


def write(broker: MemoryBroker, partition: int, stream: StreamState) -> None:
    snapshot = encode(stream.to_snapshot(NOW))
    broker.append("a", partition, stream.stream_id.encode(), snapshot)


def replica_over(broker: MemoryBroker) -> tuple[CustomerReplica, MemorySnapshotTail]:
    tail = MemorySnapshotTail(broker, "a")
    return CustomerReplica(tail), tail


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker.for_config(CONFIG, PARTITIONS)


def test_it_reads_only_the_partitions_not_owned(
    broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    write(broker, 0, user("u0"))
    write(broker, 2, user("u2"))
    # An owned partition is never read, so not even this value is decoded.
    broker.append("a", 1, b"user-u1", b"not json")
    replica, tail = replica_over(broker)
    replica.follow(PARTITIONS, owned={1}, timeout_s=1)
    assert replica.followed == {0, 2}
    assert tail.assignments == [{0: 0, 2: 0}]
    assert (replica.status(0, "u0"), replica.status(2, "u2")) == ("active", "active")
    assert replica.status(1, "u1") is None
    write(broker, 0, user("u0", 2, active=False))
    write(broker, 1, user("u1"))
    assert replica.poll() == 1
    assert replica.status(0, "u0") == "deactivated"
    assert replica.status(1, "u1") is None
    assert "unreadable snapshot" not in caplog.text


def test_owning_every_partition_reads_nothing(broker: MemoryBroker) -> None:
    write(broker, 0, user("u0"))
    replica, tail = replica_over(broker)
    replica.follow(PARTITIONS, owned={0, 1, 2}, timeout_s=1)
    assert tail.assignments == [{}]
    assert replica.poll() == 0
    assert replica.user_count() == 0


def test_a_partition_that_becomes_owned_is_forgotten_and_read_no_more(
    broker: MemoryBroker,
) -> None:
    write(broker, 0, user("u0"))
    write(broker, 2, user("u2"))
    replica, tail = replica_over(broker)
    replica.follow(PARTITIONS, owned={1}, timeout_s=1)
    replica.follow(PARTITIONS, owned={0, 1}, timeout_s=1)
    assert tail.assignments[-1] == {2: 1}
    assert replica.status(0, "u0") is None
    write(broker, 0, user("u0", 2, active=False))
    assert replica.poll() == 0
    assert replica.status(2, "u2") == "active"


def test_a_handed_over_partition_is_read_on_from_where_its_restore_ended(
    broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    # Offset 0 is before the restore's end: the owner's state holds it, so it is never read.
    broker.append("a", 1, b"user-u1", b"not json")
    replica, tail = replica_over(broker)
    replica.follow(PARTITIONS, owned={1}, timeout_s=1)
    replica.hand_over(1, [user("u1", 3), StreamState("order-o1", "order")], resume_at=1)
    replica.follow(PARTITIONS, owned=(), timeout_s=1)
    assert tail.assignments[-1] == {0: 0, 1: 1, 2: 0}
    assert replica.status(1, "u1") == "active"  # known at once, nothing read yet
    assert replica.user_count() == 1
    write(broker, 1, user("u1", 4, active=False))  # what the partition's next owner writes
    assert replica.poll() == 1
    assert replica.status(1, "u1") == "deactivated"
    assert "unreadable snapshot" not in caplog.text


def test_records_read_again_never_move_a_user_back(broker: MemoryBroker) -> None:
    write(broker, 1, user("u1", 2, active=False))
    replica, _ = replica_over(broker)
    replica.follow(PARTITIONS, owned={1}, timeout_s=1)
    replica.hand_over(1, [user("u1", 3)], resume_at=0)  # a lost partition: read from earlier
    replica.follow(PARTITIONS, owned=(), timeout_s=1)
    assert replica.poll() == 1
    assert replica.status(1, "u1") == "active"


def test_a_tombstone_forgets_the_user_and_a_bad_snapshot_keeps_the_last(
    broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    write(broker, 0, user("u0"))
    write(broker, 0, user("u9"))
    replica, _ = replica_over(broker)
    replica.follow(PARTITIONS, owned=(), timeout_s=1)
    broker.append("a", 0, b"user-u0", None)
    with caplog.at_level(logging.WARNING):
        broker.append("a", 0, b"user-u9", b"not json")
        assert replica.poll() == 2
    assert replica.status(0, "u0") is None
    assert replica.status(0, "u9") == "active"
    assert "replica ignores an unreadable snapshot" in caplog.text


# -- through the processor --------------------------------------------------------------------


def envelope(command_id: str, type_: str, aggregate_id: str, data: dict[str, object]) -> bytes:
    return json.dumps({
        "command_id": command_id, "type": type_, "aggregate_id": aggregate_id, "data": data,
        "issued_at": "2024-05-01T00:00:00Z",
    }).encode()


def on_partition(kind: str, partition: int, nth: int = 0) -> str:
    """The `nth` aggregate id `<kind's initial><n>` whose stream lives on `partition`."""
    ids = (f"{kind[0]}{n}" for n in range(1000))
    found = [i for i in ids if partition_for(f"{kind}-{i}", PARTITIONS) == partition]
    return found[nth]


class Group:
    """Processors of one group on one broker, each with a replica whose tail the test sees."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self.processors: list[Processor] = []
        self.tails: list[MemorySnapshotTail] = []

    def join(self, instance: str) -> Processor:
        tail = MemorySnapshotTail(self.broker, "a")
        config = dataclasses.replace(CONFIG, instance_id=instance)
        ports = dataclasses.replace(self.broker.ports(config), replica=CustomerReplica(tail))
        processor = Processor(config, ports, lambda: NOW)
        processor.start()
        self.processors.append(processor)
        self.tails.append(tail)
        return processor

    def send(self, stream_id: str, value: bytes) -> None:
        self.broker.append("c", partition_for(stream_id, PARTITIONS), stream_id.encode(), value)

    def drain(self) -> None:
        for _ in range(100):
            for processor in self.processors:
                processor.step()
            if self.broker.drained("c"):
                return
        raise AssertionError("not drained")

    def result(self, command_id: str) -> tuple[str, str | None]:
        for record in self.broker.records("r"):
            found = decode_result(record.value or b"")
            if found.command_id == command_id:
                return found.status, found.code
        raise AssertionError(f"no result for {command_id}")


def followed(processor: Processor) -> frozenset[int]:
    replica = processor._replica
    assert isinstance(replica, CustomerReplica)
    return replica.followed


def test_a_processor_owning_every_partition_decides_orders_from_its_own_state(
    broker: MemoryBroker,
) -> None:
    group = Group(broker)
    processor = group.join("a")
    customer, order = on_partition("user", 1), on_partition("order", 2)
    group.send(f"user-{customer}", envelope("c1", "CreateUser", customer,
                                            {"email": "a@example.com", "name": "A"}))
    data = {"customer_id": customer, "items": ITEMS, "currency": "EUR"}
    group.send(f"order-{order}", envelope("c2", "CreateOrder", order, data))
    group.drain()
    assert group.result("c2") == ("accepted", None)
    assert followed(processor) == frozenset()
    assert all(assignment == {} for assignment in group.tails[0].assignments)


def test_two_processors_see_each_others_users_and_follow_a_rebalance(
    broker: MemoryBroker,
) -> None:
    customer = on_partition("user", 1)
    write(broker, 1, user(customer))  # created before the processors started
    group = Group(broker)
    first = group.join("a")
    other = on_partition("user", 1, nth=1)  # created by the first: its own write
    group.send(f"user-{other}", envelope("c1", "CreateUser", other,
                                         {"email": "b@example.com", "name": "B"}))
    group.drain()
    assert followed(first) == frozenset()
    # A second member: the first keeps partitions 0 and 2 and hands partition 1 over.
    second = group.join("b")
    group.drain()
    first.step()
    assert (followed(first), followed(second)) == ({1}, {0, 2})
    # The first reads partition 1 on from where its restore ended (after the customer's
    # snapshot): what it wrote itself since is read again and changes nothing.
    assert group.tails[0].assignments[-1] == {1: 1}
    orders = [on_partition("order", partition) for partition in (0, 2)]
    data = {"customer_id": customer, "items": ITEMS, "currency": "EUR"}
    group.send(f"order-{orders[0]}", envelope("c2", "CreateOrder", orders[0], data))
    group.drain()
    assert group.result("c2") == ("accepted", None)
    # The user's new owner deactivates it; the first learns it from its replica.
    group.send(f"user-{customer}", envelope("c3", "DeactivateUser", customer, {}))
    group.drain()
    group.send(f"order-{orders[1]}", envelope("c4", "CreateOrder", orders[1], data))
    group.drain()
    status, code = group.result("c4")
    assert second._replica.status(1, customer) is None  # its own partition: never replicated
    assert (status, code) == ("rejected", "order.customer_inactive")
    for processor in group.processors:
        processor.close()
