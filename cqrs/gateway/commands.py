"""`POST /commands/<Type>`: one route per entry of `topics.COMMANDS`, typed bodies.

Without `wait` the command is written (acknowledged by the broker) and answered 202 with its id.
With `?wait=SECONDS` the route waits for the processor's result: 200 accepted or duplicate,
409 rejected by a business rule or a version conflict, 422 rejected as invalid, 504 no result
in time (the command stays written: wait again by resending it with the same `command_id`).
The client's calls block, so they run in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pipeline.client import (
    ClientError,
    InvalidCommand,
    ResultTimeout,
    check_command,
    new_command,
    stream_id_of,
)
from topics import COMMANDS, CommandEnvelope, CommandResult, CommandSpec, correlation_of

log = logging.getLogger(__name__)

MAX_WAIT = 60.0
INVALID_CODES = ("validation.", "command.unknown_type")
"""Rejection codes that mean the input was wrong (422) rather than a conflict with state (409)."""

D = TypeVar("D", bound=BaseModel)


class CommandRequest(BaseModel, Generic[D]):
    """A command to send; `data` is the command type's own model."""

    model_config = ConfigDict(extra="forbid")

    aggregate_id: str = Field(description="The user's or order's id, e.g. u001 or o42.")
    data: D
    expected_version: int | None = Field(
        default=None, ge=0, description="Reject unless the stream is at this version.")
    command_id: str | None = Field(
        default=None, description="Idempotency key (default: a new uuid4); reuse it to retry.")
    correlation_id: str | None = Field(
        default=None, description="Follows the command into its events' headers and every log "
        "(default: the `X-Correlation-ID` request header, else the command id).")


class Submitted(BaseModel):
    command_id: str
    stream_id: str
    status: Literal["submitted"] = "submitted"


class CommandTimeout(BaseModel):
    detail: str
    command_id: str
    stream_id: str
    status: Literal["timeout"] = "timeout"


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": CommandResult, "description": "With `wait`: accepted or duplicate."},
    409: {"model": CommandResult, "description": "With `wait`: rejected (code, reason, version)."},
    422: {"description": "Invalid body, or with `wait` rejected as invalid by the processor."},
    503: {"description": "Kafka unavailable or topics missing."},
    504: {"model": CommandTimeout, "description": "With `wait`: no result in time."},
}


def router() -> APIRouter:
    """The command routes, one per registered command type."""
    commands = APIRouter(prefix="/commands", tags=["commands"])
    for name, spec in sorted(COMMANDS.items()):
        commands.add_api_route(
            f"/{name}", _endpoint(name, spec), methods=["POST"], status_code=202,
            response_model=Submitted, responses=RESPONSES, name=name,
            summary=f"{name} ({spec.aggregate_type})",
            description=(spec.model.__doc__ or "").strip() or None)
    return commands


def _endpoint(name: str, spec: CommandSpec) -> Callable[..., Awaitable[Any]]:
    async def endpoint(request: Request, body: Any, wait: float | None = None) -> Any:
        return await submit(request, name, body, wait)

    request_model = CommandRequest[spec.model]  # type: ignore[name-defined]
    wait_query = Query(default=None, ge=0, le=MAX_WAIT,
                       description="Seconds to wait for the processor's result.")
    endpoint.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=Annotated[request_model, Body()]),
        inspect.Parameter("wait", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=float | None, default=wait_query),
    ])
    endpoint.__name__ = f"post_{name}"
    return endpoint


async def submit(request: Request, name: str, body: CommandRequest[Any],
                 wait: float | None) -> Any:
    """Build, check, send (and maybe wait); maps every outcome to its status code."""
    try:
        command = new_command(
            name, body.aggregate_id, body.data.model_dump(mode="json", exclude_unset=True),
            command_id=body.command_id, expected_version=body.expected_version,
            correlation_id=body.correlation_id or request.headers.get("x-correlation-id"),
            issued_by="gateway")
        check_command(command)
        stream_id = stream_id_of(command)
    except InvalidCommand as error:
        raise HTTPException(422,
                            {"code": error.code, "reason": str(error)}) from None
    log.debug("command accepted for sending", extra={
        "command_id": command.command_id, "correlation_id": correlation_of(command),
        "stream_id": stream_id, "type": name})
    pool = request.app.state.services.commands
    try:
        async with pool.borrow() as client:
            if wait is None:
                await asyncio.to_thread(client.send, command)
                return Submitted(command_id=command.command_id, stream_id=stream_id)
            result: CommandResult = await asyncio.to_thread(client.send_and_wait, command, wait)
    except ResultTimeout:
        return _timeout(command, stream_id, wait or 0.0)
    except ClientError as error:
        raise HTTPException(503, str(error)) from None
    return JSONResponse(result.model_dump(mode="json"), status_code=_status_of(result))


def _status_of(result: CommandResult) -> int:
    if result.status != "rejected":
        return 200
    if (result.code or "").startswith(INVALID_CODES):
        return 422
    return 409


def _timeout(command: CommandEnvelope, stream_id: str, wait: float) -> JSONResponse:
    body = CommandTimeout(
        detail=f"no result within {wait:g}s: the command was written and will be processed "
        "when the processor gets to it; resend it with the same command_id to wait again "
        "(a repeat is answered 'duplicate')",
        command_id=command.command_id, stream_id=stream_id)
    return JSONResponse(body.model_dump(), status_code=504)
