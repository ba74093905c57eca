"""Envelopes round-trip as JSON, refuse bad input readably, and carry routing headers."""

import json
from datetime import UTC, datetime

import pytest

from topics import (
    CommandEnvelope,
    CommandResult,
    DecodeError,
    EventEnvelope,
    InvalidEnvelope,
    InvalidStreamId,
    NotJson,
    Snapshot,
    TooLarge,
    decode_command,
    decode_event,
    decode_result,
    decode_snapshot,
    encode,
    event_key,
    headers_for_command,
    headers_for_event,
    limits,
    make_stream_id,
    parse_event_key,
    parse_stream_id,
    peek_command_id,
    read_headers,
    remember_command,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def command(**overrides: object) -> CommandEnvelope:
    fields: dict[str, object] = {
        "command_id": "c-1",
        "type": "CreateUser",
        "aggregate_id": "u001",
        "data": {"email": "a@example.com", "name": "Ada"},
        "issued_at": NOW,
    }
    fields.update(overrides)
    return CommandEnvelope.model_validate(fields)


def event() -> EventEnvelope:
    return EventEnvelope(
        event_id="user-u001@3",
        type="UserNameChanged",
        schema_version=1,
        stream_id="user-u001",
        version=3,
        data={"name": "Ada"},
        occurred_at=NOW,
        causation_id="c-1",
    )


def test_every_envelope_round_trips() -> None:
    result = CommandResult(
        command_id="c-1", stream_id="user-u001", status="accepted", version=3,
        event_ids=["user-u001@3"], processed_at=NOW,
    )  # fmt: skip
    snapshot = Snapshot(
        stream_id="user-u001", aggregate_type="user", version=3, state={"name": "Ada"},
        recent_command_ids=["c-1"], updated_at=NOW,
    )  # fmt: skip
    assert decode_command(encode(command())) == command()
    assert decode_event(encode(event())) == event()
    assert decode_result(encode(result)) == result
    assert decode_snapshot(encode(snapshot)) == snapshot


def test_encoding_is_utf8_json() -> None:
    raw = encode(command(data={"name": "Zoë"}))
    assert json.loads(raw.decode("utf-8"))["data"] == {"name": "Zoë"}


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"", b"not json"])
def test_not_json(raw: bytes) -> None:
    with pytest.raises(NotJson, match="JSON"):
        decode_command(raw)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"aggregate_id": "bad id!"}, "aggregate_id"),
        ({"aggregate_id": ""}, "aggregate_id"),
        ({"command_id": ""}, "command_id"),
        ({"command_id": "x" * 129}, "command_id"),
        ({"expected_version": -1}, "expected_version"),
        ({"issued_at": "2024-05-01T12:00:00"}, "issued_at"),
        ({"type": "create user"}, "type"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_command_names_the_field(change: dict[str, object], field: str) -> None:
    document = json.loads(encode(command()))
    document.update(change)
    with pytest.raises(InvalidEnvelope, match=field):
        decode_command(json.dumps(document).encode())


def test_oversized_command_is_refused_before_parsing() -> None:
    with pytest.raises(TooLarge, match=str(limits.MAX_COMMAND_BYTES)):
        decode_command(b" " * (limits.MAX_COMMAND_BYTES + 1))


def test_decode_errors_share_a_base() -> None:
    assert issubclass(TooLarge, DecodeError)
    assert issubclass(NotJson, DecodeError)
    assert issubclass(InvalidEnvelope, DecodeError)


def test_events_ignore_unknown_envelope_fields() -> None:
    document = json.loads(encode(event()))
    document["added_later"] = True
    assert decode_event(json.dumps(document).encode()) == event()


def test_peek_command_id_from_a_broken_command() -> None:
    assert peek_command_id(b'{"command_id": "c-9", "type": 3}') == "c-9"
    assert peek_command_id(b"{") is None
    assert peek_command_id(b'{"command_id": "has space"}') is None
    assert peek_command_id(b"[1]") is None


def test_peek_command_id_of_a_deeply_nested_command() -> None:
    # 20,000 levels (40 KB, under the command limit): `json.loads` raises RecursionError.
    deep = b"[" * 20_000 + b"]" * 20_000
    assert peek_command_id(b'{"command_id": "c-9", "data": ' + deep + b"}") == "c-9"
    assert peek_command_id(b'{"data": {"a": ' + deep + b'}, "command_id":"c-8"}') == "c-8"
    objects = b'{"a": [1, "]}", ' * 3000 + b"true" + b"]}" * 3000
    assert peek_command_id(b'{"command_id": "c-7", "data": ' + objects + b"}") == "c-7"
    assert peek_command_id(b'{"command_id": "c-9", "command_id": 1, "d": ' + deep + b"}") is None
    assert peek_command_id(b'{"command_id": "c-9", "data": ' + deep[:-1] + b"}") is None
    assert peek_command_id(b'{"command_id": "c-9", "data": ' + deep + b"} x") is None
    assert peek_command_id(b"[" + deep + b"]") is None


def test_stream_ids_and_event_keys() -> None:
    assert make_stream_id("user", "u001") == "user-u001"
    assert parse_stream_id("order-o-42") == ("order", "o-42")
    assert event_key("user-u001", 7) == "user-u001@7"
    assert parse_event_key("order-o-42@12") == ("order-o-42", 12)


@pytest.mark.parametrize("stream_id", ["user", "User-u1", "user-", "user-a b", "-u1"])
def test_bad_stream_ids(stream_id: str) -> None:
    with pytest.raises(InvalidStreamId):
        parse_stream_id(stream_id)


def test_bad_event_key() -> None:
    with pytest.raises(InvalidStreamId):
        parse_event_key("user-u1@x")


def test_headers_route_without_decoding() -> None:
    headers = read_headers(list(headers_for_event(event())))
    assert headers == {
        "type": "UserNameChanged",
        "stream_id": "user-u001",
        "version": "3",
        "schema_version": "1",
    }
    command_headers = read_headers(list(headers_for_command(command(), "user-u001")))
    # no correlation id of its own: the command's id starts the conversation
    assert command_headers == {"type": "CreateUser", "stream_id": "user-u001", "command_id": "c-1",
                               "correlation_id": "c-1"}
    correlated = command().model_copy(update={"correlation_id": "req-7"})
    assert read_headers(list(headers_for_command(correlated, "u")))["correlation_id"] == "req-7"
    with_correlation = event().model_copy(update={"correlation_id": "req-7"})
    assert read_headers(list(headers_for_event(with_correlation)))["correlation_id"] == "req-7"
    assert read_headers(None) == {}
    assert read_headers([("k", None)]) == {"k": ""}


def test_recent_command_window_is_bounded() -> None:
    recent: list[str] = []
    for index in range(limits.RECENT_COMMANDS_WINDOW + 5):
        recent = remember_command(recent, f"c{index}")
    assert len(recent) == limits.RECENT_COMMANDS_WINDOW
    assert recent[-1] == f"c{limits.RECENT_COMMANDS_WINDOW + 4}"
    assert recent[0] == "c5"


# -- Limits (topics.limits): new ids are bounded, ids already on the log still parse ------------


def test_an_aggregate_id_of_exactly_the_limit_is_accepted() -> None:
    longest = "u" * limits.MAX_AGGREGATE_ID_LENGTH
    assert command(aggregate_id=longest).aggregate_id == longest
    assert make_stream_id("user", longest) == f"user-{longest}"


@pytest.mark.parametrize("length", [limits.MAX_AGGREGATE_ID_LENGTH + 1, 122, 128])
def test_an_aggregate_id_beyond_the_limit_is_refused(length: int) -> None:
    document = json.loads(encode(command()))
    document["aggregate_id"] = "u" * length
    with pytest.raises(InvalidEnvelope, match="aggregate_id"):
        decode_command(json.dumps(document).encode())
    with pytest.raises(InvalidStreamId):
        make_stream_id("user", "u" * length)


def test_stream_ids_written_by_earlier_releases_still_parse() -> None:
    legacy = "u" * limits.READ_MAX_AGGREGATE_ID_LENGTH
    assert parse_stream_id(f"user-{legacy}") == ("user", legacy)
    assert parse_event_key(f"user-{legacy}@1") == (f"user-{legacy}", 1)
    with pytest.raises(InvalidStreamId):
        parse_stream_id("user-" + legacy + "u")


@pytest.mark.parametrize("text", ["user-u1\n", "user-u1@1\n", "user-u1@\u0661"])
def test_keys_with_a_trailing_newline_or_foreign_digits_do_not_parse(text: str) -> None:
    with pytest.raises(InvalidStreamId):
        parse_event_key(text) if "@" in text else parse_stream_id(text)


def test_versions_beyond_bigint_are_refused() -> None:
    with pytest.raises(ValueError, match="expected_version"):
        command(expected_version=limits.MAX_VERSION + 1)
    assert command(expected_version=limits.MAX_VERSION).expected_version == limits.MAX_VERSION
    document = json.loads(encode(event()))
    document["version"] = limits.MAX_VERSION + 1
    with pytest.raises(InvalidEnvelope, match="version"):
        decode_event(json.dumps(document).encode())


def test_peek_command_id_refuses_a_trailing_newline() -> None:
    assert peek_command_id(b'{"command_id": "c-9\\n"}') is None
