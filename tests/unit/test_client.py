"""The client's edge logic without Kafka: building envelopes, reading documents, local checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.client import (
    InvalidCommandData,
    UnknownCommandType,
    check_command,
    command_from_document,
    known_types,
    new_command,
    stream_id_of,
)
from topics import decode_command, encode

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
ALICE = {"email": "alice@example.com", "name": "Alice Smith"}


def test_new_command_fills_a_uuid_and_the_given_clock() -> None:
    command = new_command("CreateUser", "u001", ALICE, now=NOW)
    assert len(command.command_id) == 36
    assert command.issued_at == NOW
    assert command.data == ALICE
    assert command.expected_version is None


def test_new_command_ids_differ_and_default_clock_is_utc() -> None:
    first, second = new_command("ReactivateUser", "u1"), new_command("ReactivateUser", "u1")
    assert first.command_id != second.command_id
    assert first.issued_at.utcoffset() is not None


def test_new_command_keeps_the_callers_fields_and_round_trips() -> None:
    command = new_command(
        "PayOrder", "o42", {"payment_ref": "pay-1"}, command_id="c-1", expected_version=1,
        issued_by="alice", correlation_id="corr-1", now=NOW,
    )
    assert decode_command(encode(command)) == command
    assert (command.command_id, command.expected_version) == ("c-1", 1)
    assert (command.issued_by, command.correlation_id) == ("alice", "corr-1")


@pytest.mark.parametrize(
    ("aggregate_id", "command_id", "expected_version"),
    [("bad id", None, None), ("u1", "has space", None), ("u1", None, -1)],
)
def test_new_command_refuses_an_invalid_envelope(
    aggregate_id: str, command_id: str | None, expected_version: int | None
) -> None:
    with pytest.raises(InvalidCommandData, match="invalid command envelope"):
        new_command("CreateUser", aggregate_id, ALICE, command_id=command_id,
                    expected_version=expected_version)


@pytest.mark.parametrize(
    ("type_name", "aggregate_id", "stream_id"),
    [("CreateUser", "u001", "user-u001"), ("CancelOrder", "o42", "order-o42")],
)
def test_stream_id_is_aggregate_type_dash_id(
    type_name: str, aggregate_id: str, stream_id: str
) -> None:
    assert stream_id_of(new_command(type_name, aggregate_id)) == stream_id


def test_unknown_type_lists_the_known_ones() -> None:
    command = new_command("CreateUsr", "u1", ALICE)
    with pytest.raises(UnknownCommandType, match="known types: CancelOrder, CreateOrder") as info:
        check_command(command)
    assert info.value.code == "command.unknown_type"
    with pytest.raises(UnknownCommandType):
        stream_id_of(command)


def test_known_types_are_the_nine_commands() -> None:
    assert known_types() == sorted([
        "CreateUser", "UpdateUser", "DeactivateUser", "ReactivateUser", "ForgetUser",
        "CreateOrder", "PayOrder", "ShipOrder", "CancelOrder",
    ])


def test_check_command_reports_the_processors_validation_code() -> None:
    command = new_command("CreateUser", "u1", {"email": "nope", "name": ""})
    with pytest.raises(InvalidCommandData, match="email: not a valid email") as info:
        check_command(command)
    assert info.value.code.startswith("validation.")
    assert "name: the name is empty" in str(info.value)


def test_check_command_accepts_valid_data() -> None:
    items = [{"sku": "A", "quantity": 1, "unit_price": 500}]
    check_command(new_command("CreateOrder", "o1",
                              {"customer_id": "u1", "items": items, "currency": "EUR"}))
    check_command(new_command("CreateUser", "u1", ALICE))


def test_short_document_gets_an_id_and_a_time() -> None:
    command = command_from_document(
        {"type": "CreateUser", "aggregate_id": "u1", "data": ALICE}, now=NOW
    )
    assert command.issued_at == NOW
    assert command.command_id
    assert stream_id_of(command) == "user-u1"


def test_full_document_is_kept_as_is() -> None:
    full = new_command("UpdateUser", "u1", {"name": "B"}, expected_version=3, now=NOW)
    assert command_from_document(full.model_dump(mode="json")) == full


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "must be a JSON object"),
        ({"type": "CreateUser", "aggregate_id": "u1", "dta": {}}, "dta"),
        ({"type": "CreateUser", "data": {}}, "aggregate_id"),
        ({"type": "CreateUser", "aggregate_id": "u1", "data": []}, "data"),
    ],
)
def test_bad_documents_are_refused(document: object, message: str) -> None:
    with pytest.raises(InvalidCommandData, match=message):
        command_from_document(document)
