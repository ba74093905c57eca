"""`cqrs send TYPE --aggregate-id ID [FIELD=VALUE ...]`: send commands, maybe wait on results."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from cqrs.bootstrap import Sender
from cqrs.cli.boot import bootstrap
from pipeline.client import (
    ClientError,
    InvalidCommand,
    ResultTimeout,
    check_command,
    command_from_document,
    new_command,
    stream_id_of,
)
from topics import CommandEnvelope, CommandResult

DEFAULT_WAIT_SECONDS = 30.0

EXIT_OK, EXIT_REJECTED, EXIT_INVALID, EXIT_TIMEOUT, EXIT_KAFKA = 0, 1, 2, 3, 4


class OutputFormat(StrEnum):
    human = "human"
    json = "json"


class SendCommand(TyperCommand):
    """Lets `--wait` take an optional value: `--wait`, `--wait 10` and `--wait=10` all work."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # click's (or typer's) Context
        return super().parse_args(ctx, wait_value_optional(args))


def wait_value_optional(args: Sequence[str]) -> list[str]:
    """`--wait` not followed by a number becomes `--wait=<default>` (click needs a value)."""
    rewritten = list(args)
    for index, arg in enumerate(rewritten):
        if arg == "--":
            break
        if arg == "--wait":
            following = rewritten[index + 1] if index + 1 < len(rewritten) else ""
            if not _is_number(following):
                rewritten[index] = f"--wait={DEFAULT_WAIT_SECONDS:g}"
    return rewritten


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_value(text: str) -> Any:
    """A field's value: JSON when it parses (numbers, true, null, lists, objects), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_fields(pairs: Iterable[str]) -> dict[str, Any]:
    """`["email=a@b.co", "items=[...]"]` as a dict; raises `InvalidCommand`."""
    data: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidCommand(f"{pair!r} is not FIELD=VALUE", "input.field")
        if name in data:
            raise InvalidCommand(f"field {name!r} is given twice", "input.field")
        data[name] = parse_value(value)
    return data


def read_documents(text: str) -> list[object]:
    """One JSON document (an object, or an array of them), or JSON lines (blank lines skipped)."""
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    else:
        return list(whole) if isinstance(whole, list) else [whole]
    documents: list[object] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            documents.append(json.loads(line))
        except ValueError as error:
            raise InvalidCommand(f"line {number}: not JSON: {error}", "input.not_json") from None
    if not documents:
        raise InvalidCommand("no command on stdin", "input.empty")
    return documents


def commands_from_json(text: str) -> list[CommandEnvelope]:
    """Every command in `text` (see `read_documents`), each a full envelope or the short form."""
    commands = []
    for number, document in enumerate(read_documents(text), start=1):
        try:
            commands.append(command_from_document(document))
        except InvalidCommand as error:
            raise type(error)(f"command {number}: {error}", error.code) from None
    return commands


def check_all(commands: Sequence[CommandEnvelope]) -> None:
    """`check_command` on each; the error names the command's position when there are several."""
    for number, command in enumerate(commands, start=1):
        try:
            check_command(command)
        except InvalidCommand as error:
            where = f"command {number}: " if len(commands) > 1 else ""
            raise type(error)(f"{where}{error}", error.code) from None


def send(
    ctx: typer.Context,
    command_type: Annotated[
        str | None,
        typer.Argument(metavar="TYPE", help="Command type, e.g. CreateUser (see docs/sending.md)."),
    ] = None,
    fields: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[FIELD=VALUE]...",
            help="Command data; a VALUE is JSON when it parses (5, true, null, [..], {..}), "
            "else text. Quote JSON to force text: ref='\"123\"'.",
        ),
    ] = None,
    aggregate_id: Annotated[
        str | None, typer.Option("--aggregate-id", "-a", help="The aggregate's id, e.g. u001.")
    ] = None,
    expected_version: Annotated[
        int | None,
        typer.Option(min=0, help="Reject unless the stream is at this version (optimistic)."),
    ] = None,
    command_id: Annotated[
        str | None, typer.Option(help="Idempotency key (default: a new uuid4); reuse to retry.")
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(
            metavar="[SECONDS]",
            min=0,
            help=f"Wait for the result (default {DEFAULT_WAIT_SECONDS:g}s) and print it.",
        ),
    ] = None,
    json_input: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Read commands from stdin: one JSON object, an array, or JSON lines; each a "
            "full envelope or {type, aggregate_id, data}. Output is JSON lines.",
        ),
    ] = False,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.human,
) -> None:
    """Send commands to the commands topic, and optionally wait for their results.

    Example: cqrs send CreateUser --aggregate-id u001 email=alice@example.com name="Alice Smith"

    Exit codes:
    0 sent, accepted or duplicate;
    1 rejected by the processor;
    2 invalid input, nothing sent;
    3 timed out waiting (the commands were sent);
    4 Kafka unreachable, topics missing, or a command not written.
    """
    try:
        if json_input:
            if command_type or fields or aggregate_id or expected_version is not None or command_id:
                raise InvalidCommand("--json reads everything from stdin: give no TYPE or fields")
            commands = commands_from_json(sys.stdin.read())
            output = OutputFormat.json
        else:
            commands = [_one_command(command_type, aggregate_id, fields, expected_version,
                                     command_id)]
        check_all(commands)
    except InvalidCommand as error:
        _fail(f"error: {error}", EXIT_INVALID)
    try:
        client = bootstrap(ctx, "client").command_client()
    except ClientError as error:
        _fail(f"error: {error}", EXIT_KAFKA)
    try:
        code = _deliver(client, commands, wait, output)
    finally:
        client.close()
    raise typer.Exit(code)


def _one_command(
    command_type: str | None,
    aggregate_id: str | None,
    fields: list[str] | None,
    expected_version: int | None,
    command_id: str | None,
) -> CommandEnvelope:
    if not command_type:
        raise InvalidCommand("give a command TYPE (e.g. CreateUser), or --json to read stdin")
    if not aggregate_id:
        raise InvalidCommand("give --aggregate-id (the id of the user or order addressed)")
    return new_command(
        command_type,
        aggregate_id,
        parse_fields(fields or []),
        command_id=command_id,
        expected_version=expected_version,
    )


def _deliver(
    client: Sender, commands: Sequence[CommandEnvelope], wait: float | None, output: OutputFormat
) -> int:
    """Send, print, and return the exit code (kafka faults exit here with `EXIT_KAFKA`)."""
    try:
        if wait is None:
            client.send_many(commands)
            for command in commands:
                _print_sent(command, output)
            return EXIT_OK
        try:
            results = client.send_many_and_wait(commands, wait)
        except ResultTimeout as timeout:
            return _print_partial(commands, timeout, output)
    except ClientError as error:
        _fail(f"error: {error}", EXIT_KAFKA)
    for command, result in zip(commands, results, strict=True):
        _print_result(command, result, output)
    rejected = any(result.status == "rejected" for result in results)
    return EXIT_REJECTED if rejected else EXIT_OK


def _print_partial(
    commands: Sequence[CommandEnvelope], timeout: ResultTimeout, output: OutputFormat
) -> int:
    rejected = False
    for command in commands:
        result = timeout.results.get(command.command_id)
        if result is None:
            _print_timeout(command, output)
        else:
            rejected = rejected or result.status == "rejected"
            _print_result(command, result, output)
    typer.echo(f"error: {timeout}", err=True)
    return EXIT_TIMEOUT


def _print_sent(command: CommandEnvelope, output: OutputFormat) -> None:
    stream_id = stream_id_of(command)
    if output is OutputFormat.json:
        _print_json({"command_id": command.command_id, "type": command.type,
                     "stream_id": stream_id, "status": "sent"})
    else:
        typer.echo(f"sent {command.type} to {stream_id} (command id {command.command_id})")


def _print_result(command: CommandEnvelope, result: CommandResult, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        _print_json(result.model_dump(mode="json"))
        return
    where = f"{command.type} on {result.stream_id or stream_id_of(command)}"
    if result.status == "accepted":
        detail = f"now at version {result.version}"
    elif result.status == "duplicate":
        detail = f"already handled, nothing changed (version {result.version})"
    else:
        detail = f"{result.code}: {result.reason}"
    typer.echo(f"{result.status} {where}: {detail} (command id {command.command_id})")


def _print_timeout(command: CommandEnvelope, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        _print_json({"command_id": command.command_id, "type": command.type,
                     "stream_id": stream_id_of(command), "status": "timeout"})
    else:
        typer.echo(f"timeout {command.type} on {stream_id_of(command)}: sent, no result yet "
                   f"(command id {command.command_id})")


def _print_json(document: dict[str, Any]) -> None:
    typer.echo(json.dumps(document, separators=(",", ":")))


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    raise typer.Exit(code)
