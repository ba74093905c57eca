"""The processor's fast encodings write the very bytes the envelope models would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pipeline.domain import users
from pipeline.processor import StreamState, handle
from pipeline.processor import records as outbound
from pipeline.processor.failures import OutputTooLarge, check_fits
from pipeline.processor.records import InboundRecord
from tests.unit.test_processor_handling import CREATE, NOW, TOPICS, batch, command, record
from topics import (
    CommandResult,
    Event,
    OrderCreated,
    Snapshot,
    UserCreated,
    UserDeactivated,
    UserReactivated,
    deadletter,
    decode_result,
    encode,
    encode_event_fields,
    encode_result_fields,
    encode_snapshot_fields,
    headers_for_event,
    to_envelope,
)

MOMENTS = st.sampled_from(
    [
        NOW,
        datetime(2026, 11, 26, 18, 17, 37, 123456, tzinfo=UTC),
        datetime(2024, 5, 1, 1, 2, 3, 400, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    ]
)
TEXT = st.text(max_size=40)


@given(
    status=st.sampled_from(["accepted", "rejected", "duplicate"]),
    version=st.none() | st.integers(0, 10**9),
    event_ids=st.lists(st.text(max_size=20), max_size=3),
    code=st.none() | TEXT,
    reason=st.none() | TEXT,
    moment=MOMENTS,
)
def test_result_fields_encode_as_the_model(
    status: str,
    version: int | None,
    event_ids: list[str],
    code: str | None,
    reason: str | None,
    moment: datetime,
) -> None:
    fields = {
        "command_id": "c-1",
        "stream_id": "user-é",
        "status": status,
        "version": version,
        "event_ids": event_ids,
        "code": code,
        "reason": reason,
        "processed_at": moment,
    }
    assert encode_result_fields(**fields) == encode(CommandResult.model_validate(fields))  # type: ignore[arg-type]


@given(
    state=st.none() | st.dictionaries(TEXT, st.none() | st.integers() | st.floats() | TEXT),
    window=st.lists(st.text(min_size=1, max_size=10), max_size=100),
    moment=MOMENTS,
)
def test_snapshot_fields_encode_as_the_model(
    state: dict[str, object] | None, window: list[str], moment: datetime
) -> None:
    fields = {
        "stream_id": "order-o.1",
        "aggregate_type": "order",
        "version": 3,
        "state": state,
        "recent_command_ids": window,
        "updated_at": moment,
    }
    assert encode_snapshot_fields(**fields) == encode(Snapshot.model_validate(fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "event",
    [
        UserCreated(email="a@example.com", name="Ännchen"),
        UserDeactivated(reason=None),
        OrderCreated.model_validate(
            {
                "customer_id": "u1",
                "items": [{"sku": "s-1", "quantity": 2, "unit_price": 999}],
                "currency": "EUR",
                "total": 1998,
            }
        ),
    ],
)
def test_domain_event_record_equals_the_envelope_path(event: Event) -> None:
    fast = outbound.domain_event(event, "user-u1", 4, NOW, "c1", "k1", TOPICS, 2)
    envelope = to_envelope(event, "user-u1", 4, "user-u1@4", NOW, "c1", "k1")
    slow = outbound.event(envelope, TOPICS, 2)
    assert fast == slow
    assert fast.headers == headers_for_event(envelope)
    assert encode_event_fields(**envelope.model_dump()) == encode(envelope)


def test_an_event_id_too_long_for_its_envelope_still_fails_validation() -> None:
    stream_id = "user-" + "u" * 124
    with pytest.raises(ValidationError):
        outbound.domain_event(UserReactivated(), stream_id, 1, NOW, "c", "c", TOPICS, 0)


def test_snapshot_record_equals_the_model_path() -> None:
    state = users.UserState(email="a@example.com", name="Ann", active=False)
    stream = StreamState("user-u1", "user", 7, state, ("c1", "c2"))
    built = outbound.snapshot(stream, TOPICS, 1, NOW)
    assert built.value == encode(stream.to_snapshot(NOW))
    assert (built.topic, built.partition, built.key) == ("a", 1, b"user-u1")


def test_accepted_result_lists_the_event_ids_and_matches_the_model() -> None:
    handled = handle(record(command("CreateUser", "u1", **CREATE)), batch())
    value = handled.outputs[-1].value or b""
    expected = CommandResult(
        command_id="c1",
        stream_id="user-u1",
        status="accepted",
        version=1,
        event_ids=["user-u1@1"],
        processed_at=NOW,
    )
    assert value == encode(expected)
    assert dict(handled.outputs[-1].headers) == {"command_id": b"c1", "status": b"accepted"}


def test_an_overlong_decode_error_is_cut_to_the_reason_bound() -> None:
    extras = {f"field_{index:03}": 1 for index in range(60)}
    raw = json.dumps({"command_id": "c9", "type": "CreateUser", **extras}).encode()
    handled = handle(InboundRecord("c", 0, 1, b"k", raw), batch())
    assert handled.outcome == "dead_lettered"
    result = decode_result(handled.outputs[-1].value or b"")
    assert (result.status, result.code) == ("rejected", "command.InvalidEnvelope")
    assert result.reason is not None
    assert len(result.reason) == 1000


@given(
    key=st.none() | st.binary(max_size=40),
    value=st.none() | st.binary(max_size=40),
    headers=st.lists(
        st.tuples(
            st.text(st.characters(exclude_categories=()), max_size=12),
            st.none() | st.binary(max_size=12),
        ),
        max_size=6,
    ),
)
def test_the_size_bound_is_never_below_the_size(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> None:
    output = outbound.OutboundRecord("t", 0, key, value, headers)
    assert outbound.size_bound(output) >= outbound.size_of(output)


@pytest.mark.parametrize("over", [0, 1])
def test_an_output_past_its_bound_is_measured_exactly(over: int) -> None:
    name = "n" * 1000  # its bound counts 4,000 bytes, its size 1,000
    value = b"v" * (outbound.MAX_OUTPUT_BYTES - len(name) - deadletter.HEADER_FRAMING + over)
    output = outbound.OutboundRecord("t", 0, None, value, [(name, b"")])
    assert outbound.size_bound(output) > outbound.MAX_OUTPUT_BYTES
    assert outbound.size_of(output) == outbound.MAX_OUTPUT_BYTES + over
    if not over:
        check_fits([output])
    else:
        with pytest.raises(OutputTooLarge):
            check_fits([output])
