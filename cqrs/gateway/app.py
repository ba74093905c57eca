"""`create_app(services)`: the FastAPI app, its services built once in the lifespan and closed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from cqrs.gateway import auth, commands, queries
from cqrs.gateway.auth import Authenticator
from cqrs.gateway.bodies import BodyGuard
from cqrs.gateway.compose import Services
from cqrs.gateway.metrics import GatewayMetrics, RequestMetrics, serve_metrics
from observability import LIVENESS, READINESS, Verdict, Words

log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 6.0

DESCRIPTION = """\
Commands are written to Kafka and answered by the aggregate processor; queries read the
PostgreSQL read models and the Elasticsearch users index, which follow the events.

Read-your-writes: a command's result carries the stream's new `version`; pass it as
`min_version` to `GET /users/{id}` or `GET /orders/{id}` to wait (bounded) for the projection.

Bodies are JSON (`Content-Type: application/json`) of at most 65,536 bytes: larger ones are
answered 413, other media types 415, and bodies that are not strict JSON (lone surrogates, `NaN`,
nesting deeper than 32) 400.
"""


def create_app(services: Callable[[], Awaitable[Services]], *, prefix: str = "cqrs.",
               authenticator: Authenticator | None = None) -> FastAPI:
    """The gateway over what `services` builds: `Bootstrap.open_services` (of `cqrs.bootstrap`,
    whose seams take fakes in tests). `prefix` (the topic prefix) labels its metrics.
    With an `authenticator`, command routes need a key of scope `commands` (and query routes
    any key if it says so: `cqrs.gateway.auth`); without one, every route is open."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if authenticator is None:
            log.warning("command routes are unauthenticated: no keys file (--keys-file, "
                        "CQRS_GATEWAY_KEYS_FILE); create one with `cqrs gateway keys add NAME "
                        "--scope commands --keys-file PATH`")
        built = await services()
        app.state.services = built
        try:
            yield
        finally:
            await built.close()

    app = FastAPI(
        title="cqrs gateway", version="0.1.0", description=DESCRIPTION, lifespan=lifespan
    )
    app.state.metrics = GatewayMetrics(prefix)
    app.state.authenticator = authenticator
    app.add_middleware(BodyGuard)
    app.add_middleware(RequestMetrics)  # outermost: also counts what BodyGuard answers
    if authenticator is None:
        app.include_router(commands.router())
        app.include_router(queries.router)
    else:
        app.include_router(commands.router(), dependencies=[Depends(auth.commands_key)],
                           responses=auth.RESPONSES)
        if authenticator.queries_need_key:
            app.include_router(queries.router, dependencies=[Depends(auth.any_key)],
                               responses={401: auth.RESPONSES[401]})
        else:
            app.include_router(queries.router)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["health"],
                      summary="Check Kafka, PostgreSQL and Elasticsearch")
    app.add_api_route("/livez", livez, methods=["GET"], tags=["health"],
                      summary="200 while the process serves requests")
    app.add_api_route("/readyz", readyz, methods=["GET"], tags=["health"],
                      summary="200 once the Kafka producer and the read side answer")
    app.add_api_route("/metrics", serve_metrics, methods=["GET"], tags=["health"],
                      summary="Prometheus metrics", include_in_schema=False)
    return app


async def livez() -> JSONResponse:
    """200: answering is the proof that the event loop is alive."""
    return _answer(Verdict(True, "answering requests"), LIVENESS)


async def readyz(request: Request) -> JSONResponse:
    """200 once the services are built and every one (Kafka, PostgreSQL, Elasticsearch) answers;
    503 with the reason before (starting) or while one does not."""
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        return _answer(Verdict(False, "starting"), READINESS)
    checks = await _checks(services)
    failing = {name: check["error"] for name, check in checks.items() if not check["ok"]}
    if failing:
        reason = "; ".join(f"{name}: {error}" for name, error in failing.items())
        return _answer(Verdict(False, reason), READINESS)
    return _answer(Verdict(True, f"{', '.join(checks)} answer"), READINESS)


def _answer(verdict: Verdict, words: Words) -> JSONResponse:
    """The body every process's health endpoints answer (`observability.Verdict.body`)."""
    return JSONResponse(verdict.body(words), status_code=200 if verdict.ok else 503)


async def healthz(request: Request) -> JSONResponse:
    """200 when every service answers, 503 naming the ones that do not."""
    services: Services = request.app.state.services
    checks = await _checks(services)
    healthy = all(check["ok"] for check in checks.values())
    return JSONResponse({"status": "ok" if healthy else "unavailable", "checks": checks},
                        status_code=200 if healthy else 503)


async def _checks(services: Services) -> dict[str, Any]:
    names = list(services.health)
    outcomes = await asyncio.gather(
        *(asyncio.wait_for(services.health[name](), HEALTH_TIMEOUT) for name in names),
        return_exceptions=True,
    )
    checks: dict[str, Any] = {}
    for name, outcome in zip(names, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            checks[name] = {"ok": False, "error": f"{type(outcome).__name__}: {outcome}"}
        else:
            checks[name] = {"ok": True}
    return checks
