"""A stream with an unreadable snapshot is folded again from its events (no Kafka here: the
fold alone, then restarts on the in-memory broker)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from pipeline.domain import users
from pipeline.processor import Processor, ProcessorConfig, StreamState, TopicNames
from pipeline.processor.memory import MemoryBroker, drain
from pipeline.processor.rebuild import RebuildFailed, RebuildInterrupted, fold_stream
from topics import (
    Event,
    EventEnvelope,
    UserCreated,
    UserForgotten,
    UserNameChanged,
    decode_event,
    decode_result,
    encode,
    event_id_for,
    partition_for,
    to_envelope,
)

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def envelope(event: Event, version: int, causation_id: str) -> EventEnvelope:
    event_id = event_id_for("user-u1", version)
    return to_envelope(event, "user-u1", version, event_id, NOW, causation_id, None)


def history() -> list[EventEnvelope]:
    created = UserCreated(email="a@example.com", name="Ann")
    renamed = UserNameChanged(name="Anna")
    return [envelope(created, 1, "c1"), envelope(renamed, 2, "c2")]


def test_fold_stream_gives_the_state_version_and_duplicate_window() -> None:
    stream = fold_stream("user-u1", reversed(history()))
    assert (stream.aggregate_type, stream.version) == ("user", 2)
    assert isinstance(stream.state, users.UserState)
    assert stream.state.name == "Anna"
    assert stream.recent_command_ids == ("c1", "c2")


@pytest.mark.parametrize("events", [[], history()[1:]])
def test_missing_events_do_not_rebuild(events: list[EventEnvelope]) -> None:
    with pytest.raises(RebuildFailed):
        fold_stream("user-u1", events)


# -- On the in-memory broker: what a restart does with unreadable snapshots ------------------

CONFIG = ProcessorConfig(kafka={}, topics=TopicNames("c", "e", "a", "r", "dlq"), instance_id="t",
                         batch_ms=1)


def send(broker: MemoryBroker, stream: str, value: dict[str, object]) -> None:
    stream_id = f"user-{stream}"
    broker.append("c", partition_for(stream_id, broker.partitions), stream_id.encode(),
                  json.dumps({"issued_at": "2024-05-01T00:00:00Z", "aggregate_id": stream,
                              **value}).encode())


def create(stream: str, name: str = "Ann") -> dict[str, object]:
    return {"command_id": f"create-{stream}", "type": "CreateUser",
            "data": {"email": f"{stream}@example.com", "name": name}}


def rename(stream: str, name: str, expected: int) -> dict[str, object]:
    return {"command_id": f"rename-{stream}-{name}", "type": "UpdateUser", "data": {"name": name},
            "expected_version": expected}


def history_of(streams: list[str], partitions: int = 1) -> MemoryBroker:
    """A broker where `streams` were created by a processor that has since stopped."""
    broker = MemoryBroker.for_config(CONFIG, partitions)
    for stream in streams:
        send(broker, stream, create(stream))
    first = broker.processor(CONFIG, lambda: NOW)
    first.start()
    drain(first, broker)
    first.close()  # it stopped: it left the group
    return broker


def restart(broker: MemoryBroker) -> Processor:
    processor = broker.processor(CONFIG, lambda: NOW)
    processor.start()
    return processor


def results(broker: MemoryBroker) -> dict[str, tuple[str, int | None, str | None]]:
    found = {}
    for record in broker.records("r"):
        result = decode_result(record.value or b"")
        found[result.command_id] = (result.status, result.version, result.code)
    return found


def bad_snapshot(broker: MemoryBroker, stream_id: str, value: bytes) -> None:
    partition = partition_for(stream_id, broker.partitions)
    broker.append("a", partition, stream_id.encode(), value)


def test_a_read_that_does_not_finish_quarantines_nothing() -> None:
    broker = history_of(["u1"])
    bad_snapshot(broker, "user-u1", b"{broken")
    send(broker, "u1", rename("u1", "Anna", 1))
    broker.fail_reads("e", TimeoutError("events did not reach their end"))
    stopped = restart(broker)
    with pytest.raises(RebuildInterrupted):
        stopped.step()  # the assignment's restore raises, as a restore timeout does
    stopped.close()  # `Processor.run` closes it on the way out: it leaves the group
    assert not broker.records("dlq")
    assert "rename-u1-Anna" not in results(broker)
    processor = restart(broker)  # the supervisor's restart: the read now finishes
    drain(processor, broker)
    assert results(broker)["rename-u1-Anna"] == ("accepted", 2, None)
    assert not broker.records("dlq")


def test_every_partition_to_rebuild_is_read_in_one_pass() -> None:
    ids = {partition_for(f"user-u{i}", 3): f"u{i}" for i in range(40)}
    streams = [ids[partition] for partition in range(3)]
    broker = history_of(streams, partitions=3)
    for stream in streams:
        bad_snapshot(broker, f"user-{stream}", b"not json")
    broker.reads.clear()
    processor = restart(broker)
    for stream in streams:
        send(broker, stream, rename(stream, "Anna", 1))
    drain(processor, broker)
    assert [read for read in broker.reads if read[0] == "e"] == [("e", [0, 1, 2])]
    assert {results(broker)[f"rename-{s}-Anna"] for s in streams} == {("accepted", 2, None)}


def snapshot_bytes(stream_id: str, aggregate_type: str, name: str, version: int) -> bytes:
    state = users.UserState(email=f"{name.lower()}@example.com", name=name)
    stream = StreamState(stream_id, aggregate_type, version, state, ("other-command",))
    return encode(stream.to_snapshot(NOW))


@pytest.mark.parametrize(
    "foreign",
    [("user-u2", "user"), ("user-u1", "order")],
    ids=["another-stream", "another-type"],
)
def test_a_snapshot_of_another_stream_than_its_key_is_rebuilt_from_events(
    foreign: tuple[str, str],
) -> None:
    broker = history_of(["u1"])
    stream_id, aggregate_type = foreign
    if aggregate_type == "order":
        document = json.loads(snapshot_bytes(stream_id, "user", "Eve", 7))
        value = json.dumps({**document, "aggregate_type": "order", "state": None}).encode()
    else:
        value = snapshot_bytes(stream_id, aggregate_type, "Eve", 7)
    bad_snapshot(broker, "user-u1", value)
    processor = restart(broker)
    send(broker, "u1", create("u1"))  # known from the events: a duplicate
    send(broker, "u1", rename("u1", "Anna", 1))
    drain(processor, broker)
    found = results(broker)
    assert found["create-u1"] == ("duplicate", 1, None)
    assert found["rename-u1-Anna"] == ("accepted", 2, None)


def test_events_whose_key_is_not_their_stream_and_version_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = history_of(["u1"])
    impostor = envelope(UserCreated(email="eve@example.com", name="Eve"), 1, "evil")
    impostor = impostor.model_copy(update={"stream_id": "user-u9"})
    broker.append("e", 0, b"user-u1@2", encode(impostor))  # claims to be u1's version 2
    bad_snapshot(broker, "user-u1", b"{broken")
    with caplog.at_level(logging.WARNING, logger="pipeline.processor.rebuild"):
        processor = restart(broker)
        send(broker, "u1", rename("u1", "Anna", 1))
        drain(processor, broker)
    assert results(broker)["rename-u1-Anna"] == ("accepted", 2, None)
    skipped = [r for r in caplog.records if r.getMessage().startswith("event skipped")]
    assert [getattr(r, "offset", None) for r in skipped] == [1]
    (event,) = [decode_event(r.value or b"") for r in broker.records("e")
                if r.key == b"user-u1@2" and r.offset == 2]
    assert event.stream_id == "user-u1"


def test_an_erased_stream_rebuilds_as_forgotten_from_its_forget_alone() -> None:
    """After a forget and the log's compaction, the stream is its tombstones (or nothing) and its
    `UserForgotten`: that alone rebuilds it, at its version, still refusing everything."""
    broker = history_of(["u1"])
    send(broker, "u1", rename("u1", "Anna", 1))
    send(broker, "u1", {"command_id": "forget-u1", "type": "ForgetUser",
                        "data": {"reason": "art. 17", "requested_by": "dpo"}})
    processor = restart(broker)
    drain(processor, broker)
    processor.close()
    erased = [r for r in broker.records("e") if r.value is None]
    assert sorted(r.key for r in erased) == [b"user-u1@1", b"user-u1@2"]
    bad_snapshot(broker, "user-u1", b"{broken")
    processor = restart(broker)
    send(broker, "u1", create("u1", "Again") | {"command_id": "create-again"})
    send(broker, "u1", {"command_id": "forget-u1", "type": "ForgetUser",
                        "data": {"reason": "again", "requested_by": "dpo"}})
    drain(processor, broker)
    found = results(broker)
    assert found["forget-u1"] == ("duplicate", 3, None)
    assert found["create-again"] == ("rejected", 3, "user.forgotten")


def test_events_after_a_forget_do_not_rebuild() -> None:
    forget = envelope(UserForgotten(reason="r", requested_by="dpo"), 3, "c3")
    later = envelope(UserNameChanged(name="Back"), 4, "c4")
    assert fold_stream("user-u1", [forget]).version == 3
    with pytest.raises(RebuildFailed):
        fold_stream("user-u1", [*history(), forget, later])


def test_an_unreadable_event_before_the_erasure_does_not_quarantine_the_stream() -> None:
    """Before compaction an erased stream's early events are still there: one that does not
    decode is erased too, and the stream rebuilds from its erasure."""
    broker = history_of(["u1"])
    send(broker, "u1", {"command_id": "forget-u1", "type": "ForgetUser",
                        "data": {"reason": "art. 17", "requested_by": "dpo"}})
    processor = restart(broker)
    drain(processor, broker)
    processor.close()
    broker.append("e", 0, b"user-u1@1", b"{garbled")  # as if version 1 had been unreadable
    bad_snapshot(broker, "user-u1", b"{broken")
    processor = restart(broker)
    send(broker, "u1", create("u1", "Again") | {"command_id": "create-again"})
    drain(processor, broker)
    assert results(broker)["create-again"] == ("rejected", 2, "user.forgotten")
