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


class StubMessage:
    """What `adapters.inbound` reads of a confluent-kafka `Message`, with hostile headers: a
    header name that is not UTF-8 makes `headers()` raise, then return a NULL name."""

    def __init__(self, value: bytes, partition: int, headers_fail: bool = True) -> None:
        self._value = value
        self._partition = partition
        self._fail = headers_fail
        self.header_calls = 0

    def topic(self) -> str:
        return "c"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return 11

    def key(self) -> bytes:
        return b"user-u1"

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None

    def headers(self) -> list[tuple[object, bytes]]:
        self.header_calls += 1
        if self._fail and self.header_calls == 1:
            raise SystemError("<built-in method headers> returned a result with an exception set")
        return [(None, b"x")]


@pytest.mark.parametrize("first_call_raises", [True, False], ids=["raises", "null-name"])
def test_unreadable_headers_are_a_dead_letter_not_a_crash(first_call_raises: bool) -> None:
    from pipeline.processor.adapters import inbound

    partition = partition_for("user-u1", PARTITIONS)
    message = StubMessage(command("CreateUser", "u1", "h-1", **CREATE), partition,
                          first_call_raises)
    converted = inbound(message)
    assert message.header_calls == 1  # read once: a second call gives a NULL name
    assert converted.headers == []
    assert converted.unreadable_headers is not None
    failed = handle(converted, batch())
    assert failed.outcome == "dead_lettered"
    dlq, reply = failed.outputs
    headers = read_headers(list(dlq.headers))
    assert headers["dlq.error.class"] == "UnreadableHeaders"
    assert headers["dlq.source.offset"] == "11"
    assert dlq.value == message.value()
    result = decode_result(reply.value or b"")
    assert (result.command_id, result.status, result.code) == (
        "h-1", "rejected", "command.UnreadableHeaders"
    )


def test_readable_headers_pass_through_the_adapter() -> None:
    from pipeline.processor.adapters import inbound

    class Fine(StubMessage):
        def headers(self) -> list[tuple[object, bytes]]:
            return [("trace", b"t1")]

    converted = inbound(Fine(b"{}", 0))
    assert (converted.headers, converted.unreadable_headers) == ([("trace", b"t1")], None)


def test_a_pointer_dead_letter_names_what_it_left_out() -> None:
    from pipeline.processor.failures import UnwritableRecord

    value = command("CreateUser", "u1", "p-1", **CREATE)
    original = InboundRecord("c", 0, 5, b"user-u1", value, [("trace", b"t1")])
    pointer = outbound.dead_letter(original, batch().topics, UnwritableRecord("x"), pointer=True)
    headers = read_headers(list(pointer.headers))
    assert pointer.value is None
    assert "trace" not in headers
    # `dlq retry` must not re-produce an empty command: the copy says it is not the original.
    assert headers["dlq.truncated"] == "value,headers"
    assert headers["dlq.original.value.bytes"] == str(len(value))
    assert headers["dlq.error.class"] == "UnwritableRecord"
