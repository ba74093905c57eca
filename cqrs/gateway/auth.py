"""API keys on the gateway's routes: FastAPI security dependencies over a `Keyring`.

A key is presented as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Command routes
need a key of scope ``commands``; query routes need any key when `Authenticator.queries_need_key`,
else none. Missing, malformed or unknown key: 401 with ``WWW-Authenticate: Bearer``; a ``read``
key on a command route: 403. Every refusal is counted
(``cqrs_gateway_auth_failures_total{reason}``) and logged, never with the key. Health routes and
/metrics take no dependency, so they stay open.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Annotated, NoReturn

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from cqrs.gateway.keyring import Keyring
from cqrs.gateway.keys import Key, Scope, key_id_of
from cqrs.gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

bearer = HTTPBearer(auto_error=False, scheme_name="bearer", bearerFormat="cqrs_<id>_<secret>",
                    description="`Authorization: Bearer <key>` (`cqrs gateway keys add`).")
api_key = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKey",
                       description="`X-API-Key: <key>`, the same keys as `bearer`.")

UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"description": "No key, or not a valid one (`WWW-Authenticate: Bearer`)."},
    403: {"description": "A valid key whose scope does not allow this route."},
}


@dataclass
class Authenticator:
    """The keyring a gateway checks keys against, and whether queries need one too."""

    keyring: Keyring
    queries_need_key: bool = False

    async def identify(self, presented: str) -> Key | None:
        """The key `presented` is, or None. A key verified once is cached; a first one costs
        an scrypt, run in a worker thread so the event loop keeps serving."""
        self.keyring.refresh()
        known = self.keyring.cached(presented)
        if known is not None:
            return known
        candidate = self.keyring.candidate(presented)
        if candidate is None or not await asyncio.to_thread(candidate.verify, presented):
            return None
        self.keyring.remember(presented, candidate)
        return candidate


Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
ApiKey = Annotated[str | None, Depends(api_key)]


async def commands_key(request: Request, credentials: Bearer, header: ApiKey) -> Key:
    """Dependency of the command routes: a valid key of scope ``commands``."""
    return await _require(request, credentials, header, "commands")


async def any_key(request: Request, credentials: Bearer, header: ApiKey) -> Key:
    """Dependency of the query routes when they need a key: any valid key."""
    return await _require(request, credentials, header, "read")


async def _require(request: Request, credentials: HTTPAuthorizationCredentials | None,
                   header: str | None, scope: Scope) -> Key:
    authenticator: Authenticator = request.app.state.authenticator
    presented = credentials.credentials if credentials is not None else header
    if not presented:
        reason = "malformed" if "authorization" in request.headers else "missing"
        _refuse(request, 401, reason, "an API key is needed: send `Authorization: Bearer <key>` "
                "or `X-API-Key: <key>` (keys: `cqrs gateway keys add`)")
    presented = presented.strip()
    key = await authenticator.identify(presented)
    if key is None:
        reason = "unknown" if key_id_of(presented) else "malformed"
        _refuse(request, 401, reason, "the API key is not valid (unknown, revoked or mistyped)")
    if scope == "commands" and key.scope != "commands":
        _refuse(request, 403, "scope",
                f"the key {key.name!r} has scope {key.scope!r}: sending commands needs a key "
                "of scope 'commands'", key)
    return key


def _refuse(request: Request, status: int, reason: str, detail: str,
            key: Key | None = None) -> NoReturn:
    metrics: GatewayMetrics = request.app.state.metrics
    metrics.auth_failures.labels(metrics.prefix, reason).inc()
    client = request.client.host if request.client is not None else None
    log.warning("request refused", extra={
        "status": status, "reason": reason, "method": request.method, "path": request.url.path,
        "client": client, "key_name": key.name if key else None})
    raise HTTPException(status, detail, headers=UNAUTHORIZED if status == 401 else None)
