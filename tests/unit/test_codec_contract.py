"""The compiled encoders write today's bytes; the decoders take what the published schemas allow.

`encode_*_fields` write with orjson where its bytes are pydantic-core's, and hand everything else
to pydantic-core: over generated fields (unicode, lone surrogates, ints past 64 bits, NaN,
datetimes in any zone, `None`s, keys that are not text) they return exactly what pydantic-core's
`to_json` returns, or raise exactly what it raises. The decoders stay pydantic's (msgspec with
the same rules measured no faster, see `topics._codec`): every envelope drawn from docs/schemas
decodes, and encodes back to the same bytes by the model and by the fast path.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic_core import to_json

from tests.support.schemas import from_schema
from topics import (
    CommandResult,
    EventEnvelope,
    Snapshot,
    decode_command,
    decode_event,
    decode_result,
    decode_snapshot,
    encode,
    encode_event_fields,
    encode_result_fields,
    encode_snapshot_fields,
)

MINUTES = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda minutes: timedelta(minutes=minutes))
ANY_OFFSET = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59, seconds=-59),
    max_value=timedelta(hours=23, minutes=59, seconds=59),
)
"""Offsets with seconds and microseconds too: pydantic-core and orjson write those apart."""
ZONES = (
    st.none()
    | st.just(UTC)
    | st.builds(timezone, MINUTES)
    | st.timezones()
    | st.builds(timezone, ANY_OFFSET)
)
MOMENTS = st.datetimes(timezones=ZONES) | st.sampled_from(
    [
        datetime(1850, 1, 1, tzinfo=ZoneInfo("Europe/Amsterdam")),  # local mean time, +00:19:32
        datetime(2026, 12, 2, 19, 49, 1, 123456, tzinfo=UTC),
        datetime(2026, 12, 2, 19, 49, 1, 400, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999),
    ]
)
TEXT = st.text(max_size=12) | st.sampled_from(["", "é", "😀", "\u2028", "\x00\x1f\x7f", '"\\/'])
SURROGATES = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2)
ANY_TEXT = TEXT | st.builds(lambda head, bad: head + bad, TEXT, SURROGATES)
"""Text with lone surrogates too (neither encoder writes those: both raise)."""
INTEGERS = st.integers(-(2**64), 2**64) | st.sampled_from(
    [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30, 2**70]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | TEXT
    | st.sampled_from([0.1, 1e16, 1e-7, 5e-324, -0.0, 1.7976931348623157e308])
)
"""Within orjson's range: ints past 64 bits are in `INTEGERS` and `ODD_DATA`."""
JSON_DATA = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(TEXT, inner, max_size=4)
    ),
    max_leaves=20,
)
DATA = st.dictionaries(TEXT, JSON_DATA, max_size=6)
"""JSON data, as the processor passes it (`model_dump(mode="json")`)."""


class Color(enum.IntEnum):
    RED = 1


ODD_DATA = st.dictionaries(
    ANY_TEXT | INTEGERS,
    st.recursive(
        SCALARS | ANY_TEXT | MOMENTS | INTEGERS | st.uuids() | st.sampled_from(list(Color)),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT | INTEGERS, inner, max_size=3)
        ),
        max_leaves=8,
    ),
    max_size=3,
)
"""What a caller should not pass (not JSON data), whose bytes or error still must not change."""
OPTIONAL_TEXT = st.none() | TEXT


def outcome(write: Callable[[], bytes]) -> bytes | tuple[type[BaseException], str]:
    """The bytes written, or the error raised (type and message)."""
    try:
        return write()
    except Exception as error:
        return type(error), str(error)


def reference(fields: dict[str, Any]) -> bytes | tuple[type[BaseException], str]:
    """What `encode_*_fields` wrote before orjson: pydantic-core's `to_json` of the fields."""
    return outcome(lambda: to_json(fields, inf_nan_mode="null"))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_id=TEXT, type_name=TEXT, schema_version=INTEGERS, stream_id=TEXT, version=INTEGERS,
    data=DATA, occurred_at=MOMENTS, causation_id=OPTIONAL_TEXT, correlation_id=OPTIONAL_TEXT,
)  # fmt: skip
def test_event_fields_encode_as_pydantic_core_does(
    event_id: str, type_name: str, schema_version: int, stream_id: str, version: int,
    data: dict[str, Any], occurred_at: datetime, causation_id: str | None,
    correlation_id: str | None,
) -> None:  # fmt: skip
    fields = {
        "event_id": event_id, "type": type_name, "schema_version": schema_version,
        "stream_id": stream_id, "version": version, "data": data, "occurred_at": occurred_at,
        "causation_id": causation_id, "correlation_id": correlation_id,
    }  # fmt: skip
    assert outcome(lambda: encode_event_fields(**fields)) == reference(fields)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=ODD_DATA, text=ANY_TEXT, moment=MOMENTS, version=st.integers())
def test_odd_fields_encode_or_fail_as_pydantic_core_does(
    data: dict[Any, Any], text: str, moment: datetime, version: int
) -> None:
    fields = {
        "event_id": text, "type": "UserCreated", "schema_version": 1, "stream_id": "user-u1",
        "version": version, "data": data, "occurred_at": moment, "causation_id": text,
        "correlation_id": None,
    }  # fmt: skip
    assert outcome(lambda: encode_event_fields(**fields)) == reference(fields)


@settings(max_examples=300)
@given(
    stream_id=OPTIONAL_TEXT, status=TEXT, version=st.none() | INTEGERS,
    event_ids=st.lists(TEXT, max_size=3), code=OPTIONAL_TEXT, reason=OPTIONAL_TEXT,
    processed_at=MOMENTS,
)  # fmt: skip
def test_result_fields_encode_as_pydantic_core_does(
    stream_id: str | None, status: str, version: int | None, event_ids: list[str],
    code: str | None, reason: str | None, processed_at: datetime,
) -> None:  # fmt: skip
    fields = {
        "command_id": "c-1", "stream_id": stream_id, "status": status, "version": version,
        "event_ids": event_ids, "code": code, "reason": reason, "processed_at": processed_at,
    }  # fmt: skip
    assert outcome(lambda: encode_result_fields(**fields)) == reference(fields)


@settings(max_examples=300)
@given(
    version=INTEGERS, state=st.none() | DATA, window=st.lists(TEXT, max_size=100),
    updated_at=MOMENTS,
)  # fmt: skip
def test_snapshot_fields_encode_as_pydantic_core_does(
    version: int, state: dict[str, Any] | None, window: list[str], updated_at: datetime
) -> None:
    fields = {
        "stream_id": "order-o.1", "aggregate_type": "order", "version": version, "state": state,
        "recent_command_ids": window, "updated_at": updated_at,
    }  # fmt: skip
    assert outcome(lambda: encode_snapshot_fields(**fields)) == reference(fields)


@settings(max_examples=100)
@given(data=st.dictionaries(TEXT, MOMENTS | st.lists(MOMENTS, max_size=2), max_size=3))
def test_datetimes_in_the_data_encode_as_pydantic_core_does(data: dict[str, Any]) -> None:
    fields = {
        "stream_id": "user-u1",
        "aggregate_type": "user",
        "version": 1,
        "state": data,
        "recent_command_ids": [],
        "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    assert outcome(lambda: encode_snapshot_fields(**fields)) == reference(fields)


def test_one_moment_for_many_records_and_equal_moments_in_other_zones() -> None:
    now = datetime(2026, 12, 2, 19, 49, 1, 123456, tzinfo=UTC)
    elsewhere = now.astimezone(timezone(timedelta(hours=1)))
    assert now == elsewhere
    for moment in (now, now, elsewhere, now, elsewhere):
        fields: dict[str, Any] = {
            "stream_id": "user-u1",
            "aggregate_type": "user",
            "version": 1,
            "state": None,
            "recent_command_ids": [],
            "updated_at": moment,
        }
        assert encode_snapshot_fields(**fields) == to_json(fields, inf_nan_mode="null")
    assert encode_snapshot_fields(**fields).endswith(
        b'"updated_at":"2026-12-02T20:49:01.123456+01:00"}'
    )


def test_what_orjson_refuses_pydantic_core_writes() -> None:
    moment = datetime(2026, 12, 2, tzinfo=UTC)
    fields: dict[str, Any] = {
        "command_id": "c-1", "stream_id": None, "status": "rejected", "version": 2**70,
        "event_ids": [], "code": None, "reason": None, "processed_at": moment,
    }  # fmt: skip
    written = encode_result_fields(**fields)
    assert written == to_json(fields, inf_nan_mode="null")
    assert b'"version":1180591620717411303424,' in written


# -- Envelopes any client may write (docs/schemas): decoded, and written back byte for byte ----


def schema_valid(name: str) -> st.SearchStrategy[bytes]:
    """UTF-8 JSON of documents valid for the published schema `name` (none carries a lone
    surrogate: no UTF-8 text can, and the decoders' parser refuses its `\\ud800` escape)."""

    def to_bytes(document: dict[str, Any]) -> bytes:
        try:
            return json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            assume(False)
            raise

    return from_schema(name).map(to_bytes)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(raw=schema_valid("EventEnvelope"))
def test_schema_valid_events_decode_and_write_back(raw: bytes) -> None:
    envelope = decode_event(raw)
    assert encode_event_fields(**envelope.model_dump()) == encode(envelope) == legacy(envelope)
    assert decode_event(encode(envelope)) == envelope


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(raw=schema_valid("CommandResult"))
def test_schema_valid_results_decode_and_write_back(raw: bytes) -> None:
    result = decode_result(raw)
    assert encode_result_fields(**result.model_dump()) == encode(result) == legacy(result)
    assert decode_result(encode(result)) == result


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(raw=schema_valid("Snapshot"))
def test_schema_valid_snapshots_decode_and_write_back(raw: bytes) -> None:
    snapshot = decode_snapshot(raw)
    assert encode_snapshot_fields(**snapshot.model_dump()) == encode(snapshot) == legacy(snapshot)
    assert decode_snapshot(encode(snapshot)) == snapshot


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(raw=schema_valid("CommandEnvelope"))
def test_schema_valid_commands_decode_and_write_back(raw: bytes) -> None:
    command = decode_command(raw)
    assert encode(command) == legacy(command)
    assert decode_command(encode(command)) == command


def legacy(model: BaseModel) -> bytes:
    """What `encode` wrote before: `model_dump_json`, encoded."""
    return model.model_dump_json().encode("utf-8")


@pytest.mark.parametrize("model", [EventEnvelope, CommandResult, Snapshot])
def test_the_fast_paths_name_every_field_in_declaration_order(model: type[BaseModel]) -> None:
    writers: dict[type[BaseModel], Callable[..., bytes]] = {
        EventEnvelope: encode_event_fields, CommandResult: encode_result_fields,
        Snapshot: encode_snapshot_fields,
    }  # fmt: skip
    names = list(model.model_fields)
    fields: dict[str, Any] = {name: None for name in names}
    moment = next(name for name in names if name.endswith("_at"))
    fields[moment] = datetime(2026, 1, 1, tzinfo=UTC)
    assert list(json.loads(writers[model](**fields))) == names
