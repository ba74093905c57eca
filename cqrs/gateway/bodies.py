"""Request bodies: bounded in size before they are read, and strict JSON before a route sees them.

`BodyGuard` is ASGI middleware in front of every route that takes a body (POST, PUT, PATCH):

- a body over `MAX_BODY_BYTES` is answered 413, from its `Content-Length` before a byte of it is
  read, or, for a chunked body without one, as soon as what has arrived passes the limit (at
  most one chunk past it is ever held);
- a media type other than JSON is answered 415;
- a body that is not strict JSON is answered 400 with what is wrong: not UTF-8, a syntax error,
  `NaN`/`Infinity`, a number out of a double's range or of more than 4,300 digits, a lone
  surrogate (`"\\ud800"`: such a string has no UTF-8 form, so no command could carry it),
  nesting deeper than `MAX_JSON_DEPTH`.

Whatever passes is handed on unchanged (FastAPI parses it again: at most 64 KiB). Errors of the
route's own validation stay FastAPI's 422.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from topics import limits

MAX_BODY_BYTES = limits.MAX_COMMAND_BYTES
"""No command envelope may pass 64 KiB, so no body that could become one is longer."""
MAX_JSON_DEPTH = 32
"""Commands nest four levels deep (body, data, items, item); a body nested deeper is refused."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyRejected(Exception):
    """A body refused before any route saw it; `status` is its 4xx."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class BodyGuard:
    """ASGI middleware: limit, media type and strict JSON for request bodies (see the module)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            _check_headers(Headers(scope=scope), self.limit)
            body = await _read(receive, self.limit)
            if body is None:  # the client went away
                return
            check_json(body)
        except BodyRejected as rejected:
            response = JSONResponse({"detail": rejected.detail}, status_code=rejected.status)
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _check_headers(headers: Headers, limit: int) -> None:
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BodyRejected(400, f"invalid Content-Length {declared!r}")
        if int(declared) > limit:
            raise BodyRejected(413, _too_large(limit))
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise BodyRejected(
            415, f"the body must be JSON (Content-Type: application/json), not {media_type!r}"
            if media_type else "the body must be JSON: send Content-Type: application/json")


def _too_large(limit: int) -> str:
    return f"the body is larger than {limit} bytes (the most a command may take)"


async def _read(receive: Receive, limit: int) -> bytes | None:
    """The whole body, refused (413) as soon as it passes ``limit``; None on a disconnect."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > limit:
            raise BodyRejected(413, _too_large(limit))
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over ``body`` once, then defers to the real one (disconnects)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def check_json(body: bytes) -> None:
    """Raise `BodyRejected` (400) unless ``body`` is strict JSON (see the module)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyRejected(400, f"the body is not UTF-8: {error.reason} at byte {error.start}"
                           ) from None
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise BodyRejected(400, f"the body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as error:  # json.JSONDecodeError, NaN, a number of too many digits
        raise BodyRejected(400, f"the body is not valid JSON: {error}") from None
    _check_value(value)


def _check_value(value: Any) -> None:
    """Depth and lone surrogates, walked without recursion (the depth is not trusted yet)."""
    pending: list[tuple[Any, str, int]] = [(value, "$", 1)]
    while pending:
        item, where, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise BodyRejected(400, f"the body nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            _check_text(item, where)
        elif isinstance(item, float) and not math.isfinite(item):
            raise BodyRejected(400, f"the number at {where} is out of range")
        elif isinstance(item, dict):
            for key, member in item.items():
                _check_text(key, f"{where} (a key)")
                pending.append((member, f"{where}.{key}", depth + 1))
        elif isinstance(item, list):
            pending.extend((member, f"{where}[{index}]", depth + 1)
                           for index, member in enumerate(item))


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(text[error.start])
        raise BodyRejected(
            400, f"the body has a lone surrogate \\u{code:04x} at {where}: a JSON string must "
            "be Unicode text (a surrogate pair, or the character itself)") from None
