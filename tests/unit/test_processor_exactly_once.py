"""Exactly once under any faults: commands, injected producer faults (fenced and init included)
and rebalances of a group of two processors drawn by hypothesis, run on the in-memory broker
(`pipeline.processor.memory`) until the group has committed everything.

A processor whose step (or start) raises stops, as the process does (`Processor.run` closes it on
the way out, so it leaves the group), and a restart with the same instance id replaces it. A
stall keeps one processor's batch open while the group rebalances and the other processor runs:
its offsets then carry a stale generation, which the broker refuses (KIP-447).

After draining: one result per command record sent (by command id), every stream's events are
versions 1..n with distinct event ids, and each stream's latest snapshot holds the fold of its
events (state and version; its recent command ids include the events' causes).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.processor import Processor, ProcessorConfig, StreamState, TopicNames
from pipeline.processor.faults import ProducerFault, ProducerFenced
from pipeline.processor.memory import Fault, MemoryBroker, Stall
from pipeline.processor.rebuild import fold_stream
from topics import (
    EventEnvelope,
    decode_event,
    decode_snapshot,
    partition_for,
    read_headers,
)

TOPICS = TopicNames("c", "e", "a", "r", "dlq")
PARTITIONS = 3
NOW = datetime(2024, 5, 1, tzinfo=UTC)
ITEMS = [{"sku": "SKU-1", "quantity": 2, "unit_price": 150}]


def envelope(command_id: str, type_: str, aggregate_id: str, data: dict[str, Any]) -> bytes:
    return json.dumps({
        "command_id": command_id, "type": type_, "aggregate_id": aggregate_id, "data": data,
        "issued_at": "2024-05-01T00:00:00Z",
    }).encode()


def command(step: tuple[str, int, int], command_id: str) -> tuple[str | None, bytes]:
    """(stream id, bytes) of one drawn command; invalid ones included."""
    kind, n, m = step
    user, order = f"u{n}", f"o{n}"
    if kind == "create_user":
        email = f"{user}@example.com" if m else "not an email"
        return f"user-{user}", envelope(command_id, "CreateUser", user,
                                        {"email": email, "name": f"User {n}"})
    if kind == "update_user":
        return f"user-{user}", envelope(command_id, "UpdateUser", user, {"name": f"Name {m}"})
    if kind == "deactivate_user":
        return f"user-{user}", envelope(command_id, "DeactivateUser", user, {})
    if kind == "create_order":
        data = {"customer_id": f"u{m}", "items": ITEMS, "currency": "EUR"}
        return f"order-{order}", envelope(command_id, "CreateOrder", order, data)
    if kind == "pay_order":
        return f"order-{order}", envelope(command_id, "PayOrder", order, {"payment_ref": "p"})
    if kind == "unknown_type":
        return None, envelope(command_id, "Teleport", user, {})
    return None, b"not json"


KINDS = st.sampled_from([
    "create_user", "create_user", "update_user", "deactivate_user", "create_order",
    "create_order", "pay_order", "unknown_type", "garbage",
])
STEPS = st.lists(
    st.one_of(
        st.tuples(KINDS, st.integers(0, 2), st.integers(0, 2)),
        st.tuples(st.just("resend"), st.integers(0, 40), st.integers(0, 2)),
    ),
    min_size=5, max_size=25,
)
FAULTS = st.lists(
    st.one_of(
        st.builds(Fault, st.sampled_from(["abortable", "fatal"]),
                  st.sampled_from(["produce", "send_offsets", "commit"]), skip=st.integers(0, 20)),
        st.builds(Fault, st.sampled_from(["commit_landed", "commit_lost"]), st.just("commit"),
                  skip=st.integers(0, 6)),
        st.builds(Fault, st.just("fatal"), st.just("abort"), skip=st.integers(0, 2)),
        st.builds(Fault, st.just("fenced"), st.sampled_from(["begin", "produce", "commit"]),
                  skip=st.integers(0, 20)),
        st.builds(Fault, st.just("fatal"), st.just("init"), skip=st.integers(0, 3)),
    ),
    max_size=5,
)
SLOTS = ("p0", "p1")
STALLS = st.lists(
    st.tuples(st.sampled_from([0, 1]), st.sampled_from(["produce", "send_offsets", "commit"]),
              st.integers(0, 6), st.integers(0, 2), st.integers(0, 4)),
    max_size=2,
)
"""(slot, point, calls skipped, rotation of the rebalance, steps of the other slot meanwhile)."""
SCHEDULE = st.lists(st.one_of(st.sampled_from([0, 1]), st.integers(0, 2).map(lambda s: -1 - s)),
                    max_size=8)
"""Before draining: a slot's step (0, 1), or a rebalance with rotation `-1 - n`."""


def send(
    broker: MemoryBroker, steps: list[tuple[str, int, int]], misplace: list[bool]
) -> Counter[str]:
    """Append the commands (some on a wrong partition: forwarded); sends per command id."""
    sent: list[tuple[str | None, bytes]] = []
    sends: Counter[str] = Counter()
    for index, step in enumerate(steps):
        if step[0] == "resend":
            stream_id, value = sent[step[1] % len(sent)] if sent else (None, b"not json")
        else:
            stream_id, value = command(step, f"c{index}")
        sent.append((stream_id, value))
        right = partition_for(stream_id, PARTITIONS) if stream_id else index % PARTITIONS
        wrong = misplace[index % len(misplace)] if misplace else False
        key = stream_id.encode() if stream_id else None
        broker.append("c", (right + 1) % PARTITIONS if wrong else right, key, value)
        if value.startswith(b"{"):
            sends[json.loads(value)["command_id"]] += 1
    return sends


def check_streams(broker: MemoryBroker) -> None:
    events: dict[str, list[EventEnvelope]] = defaultdict(list)
    for record in broker.records("e"):
        decoded = decode_event(record.value or b"")
        events[decoded.stream_id].append(decoded)
    event_ids = [e.event_id for stream in events.values() for e in stream]
    assert len(event_ids) == len(set(event_ids))
    for stream_id, envelopes in events.items():
        assert [e.version for e in envelopes] == list(range(1, len(envelopes) + 1)), stream_id
    latest: dict[str, StreamState] = {}
    for record in broker.records("a"):
        latest[(record.key or b"").decode()] = StreamState.from_snapshot(
            decode_snapshot(record.value or b"")
        )
    assert set(latest) == set(events)
    for stream_id, snapshot in latest.items():
        rebuilt = fold_stream(stream_id, events[stream_id])
        assert (snapshot.state, snapshot.version) == (rebuilt.state, rebuilt.version), stream_id
        # A command accepted without an event (an update that changes nothing) is remembered
        # for duplicates too, so the snapshot knows at least the events' causes.
        assert set(rebuilt.recent_command_ids) <= set(snapshot.recent_command_ids), stream_id


class Group:
    """Two processor slots of one group; a slot whose processor stops is restarted."""

    def __init__(self, broker: MemoryBroker, batch_size: int,
                 resident: int | None = None) -> None:
        self.broker = broker
        self.configs = [
            ProcessorConfig(kafka={}, topics=TOPICS, instance_id=slot, batch_size=batch_size,
                            batch_ms=1, max_resident_streams=resident)
            for slot in SLOTS
        ]
        self.processors: list[Processor] = [self.start(index) for index in range(len(SLOTS))]
        self.restarts = 0

    def start(self, index: int) -> Processor:
        """A process of slot `index`: restarted until its start succeeds (faults are finite)."""
        while True:
            processor = self.broker.processor(self.configs[index], lambda: NOW)
            try:
                processor.start()
                return processor
            except (ProducerFault, ProducerFenced):
                processor.close()

    def step(self, index: int) -> None:
        try:
            self.processors[index].step()
        except (ProducerFault, ProducerFenced):
            self.processors[index].close()  # the process stops, leaving the group
            self.restarts += 1
            self.processors[index] = self.start(index)

    def stall(self, index: int, point: str, skip: int, shift: int, steps: int) -> None:
        def meanwhile() -> None:
            self.broker.group.rebalance(shift)
            for _ in range(steps):
                self.step(1 - index)

        config = self.configs[index]
        self.broker.stall(Stall(config.transactional_id, point, meanwhile, skip))  # type: ignore[arg-type]

    def drain(self, max_steps: int) -> None:
        for steps in range(max_steps):
            if self.broker.drained("c"):
                return
            self.step(steps % len(SLOTS))
        raise AssertionError(f"not drained in {max_steps} steps")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS, FAULTS, st.lists(st.booleans(), max_size=5), st.integers(1, 5), STALLS, SCHEDULE,
       st.sampled_from([None, 1, 3]))
def test_any_faults_leave_one_result_per_command_and_consistent_streams(
    steps: list[tuple[str, int, int]], faults: list[Fault], misplace: list[bool],
    batch_size: int, stalls: list[tuple[int, str, int, int, int]], schedule: list[int],
    resident: int | None,
) -> None:
    """`resident`: the processors' bound on states in memory (`spill`; 1 spills nearly every
    state between two commands), or none."""
    broker = MemoryBroker.for_config(
        ProcessorConfig(kafka={}, topics=TOPICS), PARTITIONS
    )
    sends = send(broker, steps, misplace)
    broker.inject(*faults)
    group = Group(broker, batch_size, resident)
    for stall in stalls:
        group.stall(*stall)
    for entry in schedule:
        if entry >= 0:
            group.step(entry)
        else:
            broker.group.rebalance(-1 - entry)
    group.drain(max_steps=1000)
    for processor in group.processors:
        processor.close()
    results = Counter(read_headers(list(r.headers))["command_id"] for r in broker.records("r"))
    assert results == sends
    check_streams(broker)
    event(f"faults fired: {len(broker.fired)}")
    event(f"restarts: {min(group.restarts, 3)}+")
    event(f"stale offsets refused: {min(broker.stale_refusals, 2)}+")
    event(f"accepted: {min(sum(p.counters.accepted for p in group.processors), 5)}+")


def test_a_batch_kept_open_across_a_rebalance_does_not_commit() -> None:
    """The zombie of KIP-447: its partitions went to the other member while it stalled."""
    broker = MemoryBroker.for_config(ProcessorConfig(kafka={}, topics=TOPICS), PARTITIONS)
    sends = send(broker, [("create_user", n, 1) for n in range(3)], [])
    group = Group(broker, batch_size=5)
    group.stall(0, "send_offsets", skip=0, shift=1, steps=3)
    group.step(0)  # stalls before its offsets; the group moves on and p1 commits meanwhile
    zombie = group.processors[0]
    assert zombie.counters.aborted_batches == 1  # its offsets carried the old generation
    assert broker.stale_refusals == 1
    group.drain(max_steps=50)
    results = Counter(read_headers(list(r.headers))["command_id"] for r in broker.records("r"))
    assert results == sends
    check_streams(broker)
