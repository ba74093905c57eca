"""Whatever one record raises ends it as a dead letter (+ rejected result); nothing else moves."""

from __future__ import annotations

import json

import pytest

from pipeline.processor import StateStore, handle
from pipeline.processor import handling as handling_module
from pipeline.processor import records as outbound
from pipeline.processor.records import InboundRecord
from tests.unit.test_processor_handling import CREATE, PARTITIONS, batch, command, record
from topics import deadletter, decode_result, partition_for, read_headers


def test_a_fault_while_building_outputs_dead_letters_the_record_and_leaves_no_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_snapshot(*args: object, **kwargs: object) -> outbound.OutboundRecord:
        raise RuntimeError("snapshot encoding exploded")

    current = batch()
    with monkeypatch.context() as patch:
        patch.setattr(handling_module.records, "snapshot", broken_snapshot)
        failed = handle(record(command("CreateUser", "u1", "c1", **CREATE)), current)
    assert failed.outcome == "dead_lettered"
    assert [output.topic for output in failed.outputs] == ["dlq", "r"]
    headers = read_headers(list(failed.outputs[0].headers))
    assert headers["dlq.error.class"] == "RuntimeError"
    assert headers["dlq.error.message"] == "snapshot encoding exploded"
    assert "dlq.original.value.sha256" in headers
    result = decode_result(failed.outputs[1].value or b"")
    assert (result.status, result.code) == ("rejected", "processor.internal_error")
    assert result.reason == "RuntimeError: snapshot encoding exploded"
    assert current.overlay.changed == {}  # the events were built, the state never applied
    accepted = handle(record(command("CreateUser", "u1", "c2", **CREATE)), current)
    assert accepted.outcome == "accepted"
    assert decode_result(accepted.outputs[-1].value or b"").version == 1


def test_a_decider_that_raises_is_a_dead_letter_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def decide(*args: object) -> object:
        raise KeyError("boom")

    monkeypatch.setattr(handling_module.aggregates, "decide_command", decide)
    failed = handle(record(command("CreateUser", "u1", "c1", **CREATE)), batch())
    assert failed.outcome == "dead_lettered"
    assert decode_result(failed.outputs[1].value or b"").code == "processor.internal_error"


def test_an_event_id_past_the_envelope_bound_is_a_dead_letter() -> None:
    # 122 characters pass the aggregate id pattern today; "user-<id>@1" is 129 > 128.
    aggregate_id = "a" * 122
    value = command("CreateUser", aggregate_id, "long-1", **CREATE)
    failed = handle(record(value, f"user-{aggregate_id}"), batch())
    assert failed.outcome == "dead_lettered"
    result = decode_result(failed.outputs[-1].value or b"")
    assert (result.command_id, result.status) == ("long-1", "rejected")


def test_an_output_too_large_for_a_record_is_a_dead_letter() -> None:
    # A valid command with a huge header: forwarding it whole would not fit one record.
    right = partition_for("user-u1", PARTITIONS)
    wrong = (right + 1) % PARTITIONS
    raw = command("CreateUser", "u1", "big-1", **CREATE)
    headers = [("padding", b"x" * deadletter.RECORD_LIMIT)]
    failed = handle(InboundRecord("c", wrong, 3, b"user-u1", raw, headers), batch())
    assert failed.outcome == "dead_lettered"
    dlq, reply = failed.outputs
    assert read_headers(list(dlq.headers))["dlq.error.class"] == "OutputTooLarge"
    assert read_headers(list(dlq.headers))["dlq.truncated"] == "headers"
    assert outbound.size_of(dlq) < deadletter.RECORD_LIMIT
    assert decode_result(reply.value or b"").code == "processor.output_too_large"


def test_a_record_of_the_topic_limit_becomes_one_bounded_dead_letter() -> None:
    huge = b"x" * (deadletter.RECORD_LIMIT - 100)
    failed = handle(record(huge), batch())
    (dlq,) = failed.outputs
    headers = read_headers(list(dlq.headers))
    assert len(dlq.value or b"") == deadletter.MAX_DEAD_LETTER_VALUE
    assert headers["dlq.error.class"] == "TooLarge"
    assert headers["dlq.original.value.bytes"] == str(len(huge))
    assert outbound.size_of(dlq) <= outbound.MAX_OUTPUT_BYTES


def test_a_quarantined_stream_rejects_and_dead_letters_its_commands() -> None:
    store = StateStore()
    partition = partition_for("user-u1", PARTITIONS)
    store.load(partition, {}, frozenset({"user-u1"}))
    failed = handle(record(command("CreateUser", "u1", "q-1", **CREATE)), batch(store))
    assert failed.outcome == "dead_lettered"
    assert decode_result(failed.outputs[1].value or b"").code == "processor.stream_quarantined"
    other = handle(record(command("CreateUser", "u2", "q-2", **CREATE), "user-u2"), batch(store))
    assert other.outcome == "accepted"


def test_decode_failures_keep_their_codes() -> None:
    raw = json.dumps({"command_id": "bad-1", "type": "CreateUser"}).encode()
    failed = handle(record(raw), batch())
    assert decode_result(failed.outputs[1].value or b"").code == "command.InvalidEnvelope"
    unknown = handle(record(command("FlyToMoon", "u1")), batch())
    assert decode_result(unknown.outputs[1].value or b"").code == "command.unknown_type"
