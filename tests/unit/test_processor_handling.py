"""The processor's per-record decisions and its overlay, with no Kafka."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pipeline.processor import BatchContext, Overlay, StateStore, StreamState, TopicNames, handle
from pipeline.processor.records import InboundRecord
from topics import decode_event, decode_result, decode_snapshot, limits, partition_for, read_headers

TOPICS = TopicNames("c", "e", "a", "r", "dlq")
PARTITIONS = 6
NOW = datetime(2024, 5, 1, tzinfo=UTC)


def command(type_: str, aggregate_id: str, command_id: str = "c1", **fields: object) -> bytes:
    document = {
        "command_id": command_id,
        "type": type_,
        "aggregate_id": aggregate_id,
        "issued_at": "2024-05-01T00:00:00Z",
        **fields,
    }
    return json.dumps(document).encode()


def record(value: bytes, stream_id: str = "user-u1", partition: int | None = None) -> InboundRecord:
    if partition is None:
        partition = partition_for(stream_id, PARTITIONS)
    return InboundRecord("c", partition, 7, stream_id.encode(), value)


def batch(store: StateStore | None = None) -> BatchContext:
    store = store or StateStore()
    for partition in range(PARTITIONS):
        if not store.owns(partition):
            store.load(partition, {})
    return BatchContext(TOPICS, PARTITIONS, NOW, Overlay(store), lambda user_id: None)


CREATE = {"data": {"email": "a@example.com", "name": "Ann"}}


def test_accepted_command_writes_events_snapshot_and_result_on_its_partition() -> None:
    current = batch()
    handled = handle(record(command("CreateUser", "u1", **CREATE)), current)
    assert handled.outcome == "accepted"
    topics = [output.topic for output in handled.outputs]
    assert topics == ["e", "a", "r"]
    assert {output.partition for output in handled.outputs} == {partition_for("user-u1", 6)}
    event = decode_event(handled.outputs[0].value or b"")
    assert (event.stream_id, event.version, event.causation_id) == ("user-u1", 1, "c1")
    assert handled.outputs[0].key == b"user-u1@1"
    assert read_headers(list(handled.outputs[0].headers))["version"] == "1"
    assert decode_snapshot(handled.outputs[1].value or b"").version == 1
    result = decode_result(handled.outputs[2].value or b"")
    assert (result.status, result.version, result.event_ids) == ("accepted", 1, ["user-u1@1"])


def test_same_command_id_again_is_a_duplicate_with_no_events() -> None:
    current = batch()
    handle(record(command("CreateUser", "u1", **CREATE)), current)
    handled = handle(record(command("CreateUser", "u1", **CREATE)), current)
    assert handled.outcome == "duplicate"
    assert [output.topic for output in handled.outputs] == ["r"]
    assert decode_result(handled.outputs[0].value or b"").version == 1


def test_expected_version_mismatch_is_rejected_with_the_current_version() -> None:
    current = batch()
    handle(record(command("CreateUser", "u1", **CREATE)), current)
    value = command("DeactivateUser", "u1", "c2", expected_version=5)
    handled = handle(record(value), current)
    result = decode_result(handled.outputs[0].value or b"")
    assert (handled.outcome, result.code, result.version) == (
        "rejected",
        "concurrency.version_conflict",
        1,
    )


def test_rule_violation_is_rejected_without_dlq() -> None:
    handled = handle(record(command("DeactivateUser", "u1")), batch())
    assert handled.outcome == "rejected"
    assert [output.topic for output in handled.outputs] == ["r"]
    assert decode_result(handled.outputs[0].value or b"").code == "user.not_found"


def test_command_on_the_wrong_partition_is_forwarded_unchanged() -> None:
    right = partition_for("user-u1", PARTITIONS)
    wrong = (right + 1) % PARTITIONS
    raw = command("CreateUser", "u1", **CREATE)
    handled = handle(record(raw, partition=wrong), batch())
    assert handled.outcome == "forwarded"
    (output,) = handled.outputs
    assert (output.topic, output.partition, output.value) == ("c", right, raw)


def test_not_json_goes_to_the_dlq_with_headers_and_no_result() -> None:
    handled = handle(record(b"\xff not json"), batch())
    assert handled.outcome == "dead_lettered"
    (dlq,) = handled.outputs
    headers = read_headers(list(dlq.headers))
    assert dlq.topic == "dlq"
    assert headers["dlq.error.class"] == "NotJson"
    assert headers["dlq.source.topic"] == "c"
    assert headers["dlq.source.offset"] == "7"


def test_wrong_shape_with_a_readable_id_is_dead_lettered_and_rejected() -> None:
    raw = json.dumps({"command_id": "bad-1", "type": "CreateUser"}).encode()
    handled = handle(record(raw), batch())
    assert [output.topic for output in handled.outputs] == ["dlq", "r"]
    result = decode_result(handled.outputs[1].value or b"")
    assert (result.status, result.code) == ("rejected", "command.InvalidEnvelope")


def test_unknown_type_and_oversized_commands() -> None:
    unknown = handle(record(command("FlyToMoon", "u1")), batch())
    assert read_headers(list(unknown.outputs[0].headers))["dlq.error.class"] == "UnknownCommandType"
    assert decode_result(unknown.outputs[1].value or b"").code == "command.unknown_type"
    huge = command(
        "CreateUser", "u1", data={"name": "x" * limits.MAX_COMMAND_BYTES, "email": "a@b.cd"}
    )
    oversized = handle(record(huge), batch())
    assert oversized.outcome == "dead_lettered"
    assert read_headers(list(oversized.outputs[0].headers))["dlq.error.class"] == "TooLarge"


def test_create_order_sees_a_user_created_earlier_in_the_same_batch() -> None:
    current = batch()
    handle(record(command("CreateUser", "u1", **CREATE)), current)
    items = [{"sku": "a", "quantity": 2, "unit_price": 150}]
    data = {"customer_id": "u1", "items": items, "currency": "EUR"}
    order = command("CreateOrder", "o1", "c2", data=data)
    handled = handle(record(order, "order-o1"), current)
    assert handled.outcome == "accepted", handled


def test_overlay_reaches_the_store_only_on_commit() -> None:
    store = StateStore()
    current = batch(store)
    handle(record(command("CreateUser", "u1", **CREATE)), current)
    partition = partition_for("user-u1", PARTITIONS)
    assert store.get(partition, "user-u1") is None
    current.overlay.drop()
    assert current.overlay.get(partition, "user-u1") == StreamState.empty("user-u1")
    handle(record(command("CreateUser", "u1", **CREATE)), current)
    committed = current.overlay.commit_into()
    assert [stream.stream_id for stream in committed] == ["user-u1"]
    stored = store.get(partition, "user-u1")
    assert stored is not None
    assert stored.version == 1


def test_snapshot_round_trip_keeps_state_and_window() -> None:
    current = batch()
    handled = handle(record(command("CreateUser", "u1", **CREATE)), current)
    snapshot = decode_snapshot(handled.outputs[1].value or b"")
    restored = StreamState.from_snapshot(snapshot)
    assert restored.version == 1
    assert restored.has_seen("c1")


def test_forget_tombstones_every_earlier_event_and_forgets_the_window() -> None:
    """Erasure: the forget's transaction holds a null value for each earlier event key of the
    stream, a snapshot with nothing of the person, and a window of the forget's id alone."""
    current = batch()
    partition = partition_for("user-u1", PARTITIONS)
    handle(record(command("CreateUser", "u1", "c1", **CREATE)), current)
    handle(record(command("UpdateUser", "u1", "c2", data={"name": "Ann B"})), current)
    forget = command("ForgetUser", "u1", "c3", data={"reason": "art. 17", "requested_by": "dpo"})
    handled = handle(record(forget), current)
    assert handled.outcome == "accepted"
    event = decode_event(handled.outputs[0].value or b"")
    assert (event.type, event.version, event.data) == (
        "UserForgotten", 3, {"reason": "art. 17", "requested_by": "dpo"})
    snapshot = decode_snapshot(next(o.value for o in handled.outputs if o.topic == "a") or b"")
    assert snapshot.state == {"email": "", "name": "", "active": False, "forgotten": True}
    assert snapshot.recent_command_ids == ["c3"]
    erased = [o for o in handled.outputs if o.topic == "e" and o.value is None]
    assert [o.key for o in erased] == [b"user-u1@1", b"user-u1@2"]
    assert {o.partition for o in erased} == {partition}
    assert b"ann" not in b"".join(o.value or b"" for o in handled.outputs).lower()
    again = handle(record(forget), current)
    assert again.outcome == "duplicate"
    for type_, data in (("CreateUser", CREATE["data"]), ("UpdateUser", {"name": "X"}),
                        ("ReactivateUser", {})):
        refused = handle(record(command(type_, "u1", f"n-{type_}", data=data)), current)
        assert (refused.outcome, refused.code) == ("rejected", "user.forgotten")
    order = handle(record(command(
        "CreateOrder", "o1", "c9", data={"customer_id": "u1", "currency": "EUR", "items": [
            {"sku": "s", "quantity": 1, "unit_price": 100}]}), "order-o1"), current)
    assert (order.outcome, order.code) == ("rejected", "order.customer_inactive")


def test_a_user_snapshot_names_forgotten_only_when_it_is() -> None:
    """Snapshots of users not forgotten keep the fields a processor before erasure reads."""
    current = batch()
    handled = handle(record(command("CreateUser", "u1", **CREATE)), current)
    snapshot = decode_snapshot(next(o.value for o in handled.outputs if o.topic == "a") or b"")
    assert snapshot.state == {"email": "a@example.com", "name": "Ann", "active": True}
