"""`cqrs send` without Kafka: argument parsing, stdin JSON, local validation, output, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from cqrs.bootstrap import Bootstrap, ClientFactory
from cqrs.cli import app
from cqrs.cli.send import (
    parse_fields,
    parse_value,
    read_documents,
    wait_value_optional,
)
from cqrs.config import Config
from pipeline.client import InvalidCommand, ResultTimeout, TopicMissing, stream_id_of
from topics import CommandEnvelope, CommandResult

NOW = datetime(2025, 1, 2, tzinfo=UTC)


class FakeClient:
    """Answers every command with `status` (or times out on types listed in `silent`)."""

    def __init__(self, status: str = "accepted", silent: Iterable[str] = ()) -> None:
        self.status = status
        self.silent = set(silent)
        self.sent: list[CommandEnvelope] = []
        self.closed = False
        self.timeouts: list[float] = []

    def send_many(self, commands: Iterable[CommandEnvelope]) -> list[str]:
        batch = list(commands)
        self.sent.extend(batch)
        return [command.command_id for command in batch]

    def send_many_and_wait(
        self, commands: Iterable[CommandEnvelope], timeout: float
    ) -> list[CommandResult]:
        batch = list(commands)
        self.send_many(batch)
        self.timeouts.append(timeout)
        results = {c.command_id: self._answer(c) for c in batch if c.type not in self.silent}
        pending = [c.command_id for c in batch if c.command_id not in results]
        if pending:
            raise ResultTimeout("no result: is `cqrs processor` running?", pending, results)
        return [results[c.command_id] for c in batch]

    def _answer(self, command: CommandEnvelope) -> CommandResult:
        rejected = self.status == "rejected"
        return CommandResult(
            command_id=command.command_id, stream_id=stream_id_of(command), status=self.status,
            version=None if rejected else 1, code="user.already_exists" if rejected else None,
            reason="the user already exists" if rejected else None, processed_at=NOW,
        )

    def close(self) -> None:
        self.closed = True


def run(client: FakeClient | None, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    def factory(config: Config) -> FakeClient:
        assert client is not None, "the command should fail before connecting"
        return client

    chosen: ClientFactory = factory
    result = CliRunner().invoke(app, ["send", *args], input=stdin,
                                obj=Bootstrap(command_client=chosen))
    return result.exit_code, result.stdout, result.stderr


CREATE = ("CreateUser", "--aggregate-id", "u001", "email=alice@example.com", "name=Alice Smith")


@pytest.mark.parametrize(
    ("text", "value"),
    [("5", 5), ("true", True), ("null", None), ('"5"', "5"), ("Alice Smith", "Alice Smith"),
     ("a@b.co", "a@b.co"), ("[1,2]", [1, 2]), ('{"a":1}', {"a": 1}), ("", "")],
)
def test_values_are_json_when_they_parse(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_fields_split_at_the_first_equals() -> None:
    items = '[{"sku":"A","quantity":1,"unit_price":500}]'
    assert parse_fields(["ref=a=b", f"items={items}"]) == {
        "ref": "a=b", "items": [{"sku": "A", "quantity": 1, "unit_price": 500}]}


@pytest.mark.parametrize("pairs", [["novalue"], ["=x"], ["a=1", "a=2"]])
def test_bad_fields_are_refused(pairs: list[str]) -> None:
    with pytest.raises(InvalidCommand):
        parse_fields(pairs)


def test_documents_one_object_an_array_or_lines() -> None:
    assert read_documents('{\n "a": 1\n}') == [{"a": 1}]
    assert read_documents('[{"a": 1}, {"b": 2}]') == [{"a": 1}, {"b": 2}]
    assert read_documents('{"a": 1}\n\n{"b": 2}\n') == [{"a": 1}, {"b": 2}]


def test_documents_name_the_bad_line() -> None:
    with pytest.raises(InvalidCommand, match="line 2: not JSON"):
        read_documents('{"a": 1}\n{oops\n')
    with pytest.raises(InvalidCommand, match="no command"):
        read_documents("\n\n")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["X", "--wait"], ["X", "--wait=30"]),
        (["X", "--wait", "a=1"], ["X", "--wait=30", "a=1"]),
        (["X", "--wait", "5"], ["X", "--wait", "5"]),
        (["X", "--wait=5"], ["X", "--wait=5"]),
        (["--", "--wait"], ["--", "--wait"]),
    ],
)
def test_wait_takes_an_optional_value(args: list[str], expected: list[str]) -> None:
    assert wait_value_optional(args) == expected


def test_send_builds_the_envelope_and_prints_the_id() -> None:
    client = FakeClient()
    code, out, err = run(client, *CREATE, "--expected-version", "0", "--command-id", "c-1")
    assert (code, err) == (0, "")
    [command] = client.sent
    assert (command.type, command.aggregate_id, command.command_id) == ("CreateUser", "u001", "c-1")
    assert command.data == {"email": "alice@example.com", "name": "Alice Smith"}
    assert command.expected_version == 0
    assert "sent CreateUser to user-u001 (command id c-1)" in out
    assert client.closed


def test_send_json_output() -> None:
    code, out, _ = run(FakeClient(), *CREATE, "--command-id", "c-1", "--output", "json")
    assert code == 0
    assert json.loads(out) == {"command_id": "c-1", "type": "CreateUser",
                               "stream_id": "user-u001", "status": "sent"}


def test_unknown_type_exits_2_listing_the_known_types() -> None:
    code, out, err = run(None, "CreateUsr", "--aggregate-id", "u1", "email=a@b.co")
    assert (code, out) == (2, "")
    assert "unknown command type 'CreateUsr'" in err
    assert "CreateUser" in err


def test_invalid_data_exits_2_before_connecting() -> None:
    code, _, err = run(None, "CreateUser", "-a", "u1", "email=nope")
    assert code == 2
    assert "email: not a valid email address" in err
    assert "name: Field required" in err


@pytest.mark.parametrize(
    "args",
    [["CreateUser", "email=a@b.co"], ["-a", "u1"], ["CreateUser", "-a", "u1", "oops"],
     ["CreateUser", "-a", "bad id", "email=a@b.co", "name=A"]],
)
def test_missing_or_malformed_arguments_exit_2(args: list[str]) -> None:
    code, _, err = run(None, *args)
    assert code == 2
    assert err.startswith("error:")


@pytest.mark.parametrize(
    ("status", "code", "text"),
    [("accepted", 0, "accepted CreateUser on user-u001: now at version 1"),
     ("duplicate", 0, "duplicate CreateUser on user-u001: already handled"),
     ("rejected", 1, "rejected CreateUser on user-u001: user.already_exists")],
)
def test_wait_prints_the_result_and_exits_by_status(status: str, code: int, text: str) -> None:
    client = FakeClient(status)
    exit_code, out, _ = run(client, *CREATE, "--wait")
    assert exit_code == code
    assert text in out
    assert client.timeouts == [30.0]


def test_wait_with_seconds_and_timeout_exits_3() -> None:
    client = FakeClient(silent=["CreateUser"])
    code, out, err = run(client, "--wait", "2.5", *CREATE)
    assert code == 3
    assert client.timeouts == [2.5]
    assert "timeout CreateUser on user-u001" in out
    assert "cqrs processor" in err


def test_missing_topics_exit_4() -> None:
    def factory(config: Config) -> FakeClient:
        raise TopicMissing("topic 'cqrs.commands' does not exist: run `cqrs topics apply`")

    result = CliRunner().invoke(app, ["send", *CREATE], obj=Bootstrap(command_client=factory))
    assert result.exit_code == 4
    assert "cqrs topics apply" in result.stderr


def test_json_lines_are_sent_in_one_batch_and_printed_as_json() -> None:
    client = FakeClient()
    full = {"command_id": "c-9", "type": "ReactivateUser", "aggregate_id": "u2", "data": {},
            "issued_at": "2025-01-02T00:00:00Z"}
    lines = [{"type": "CreateUser", "aggregate_id": "u1",
              "data": {"email": "a@b.co", "name": "A"}}, full]
    code, out, _ = run(client, "--json", stdin="\n".join(json.dumps(line) for line in lines))
    assert code == 0
    printed = [json.loads(line) for line in out.splitlines()]
    assert [p["stream_id"] for p in printed] == ["user-u1", "user-u2"]
    assert printed[1]["command_id"] == "c-9"
    assert [c.type for c in client.sent] == ["CreateUser", "ReactivateUser"]


def test_json_with_wait_prints_results_and_timeouts() -> None:
    client = FakeClient(silent=["PayOrder"])
    stdin = ('[{"type": "CreateUser", "aggregate_id": "u1", "data": {"email": "a@b.co", '
             '"name": "A"}}, {"type": "PayOrder", "aggregate_id": "o1", '
             '"data": {"payment_ref": "p"}}]')
    code, out, _ = run(client, "--json", "--wait", "1", stdin=stdin)
    assert code == 3
    first, second = (json.loads(line) for line in out.splitlines())
    assert (first["status"], first["version"]) == ("accepted", 1)
    assert second["status"] == "timeout"


def test_json_refuses_everything_if_one_command_is_invalid() -> None:
    stdin = ('{"type": "CreateUser", "aggregate_id": "u1", "data": {"email": "a@b.co", '
             '"name": "A"}}\n{"type": "PayOrder", "aggregate_id": "o1", "data": {}}\n')
    code, _, err = run(None, "--json", stdin=stdin)
    assert code == 2
    assert "command 2: invalid PayOrder data: payment_ref: Field required" in err


def test_json_refuses_positional_arguments() -> None:
    code, _, err = run(None, "--json", "CreateUser", stdin="{}")
    assert code == 2
    assert "--json" in err
