"""The gateway's Prometheus metrics: requests and their duration per route template.

One `CollectorRegistry` per app (`GatewayMetrics`), served at `GET /metrics`:

- `cqrs_gateway_requests_total{prefix,method,route,status}`
- `cqrs_gateway_request_duration_seconds{prefix,method,route}` (histogram)
- `cqrs_gateway_auth_failures_total{prefix,reason}`: requests refused for their API key, `reason`
  one of `missing`, `malformed`, `unknown` (401) or `scope` (403) (`cqrs.gateway.auth`)

`route` is the matched route's template (`/users/{user_id}`), never the raw path, so ids do not
make new series; a request no route matches is counted as `route="unmatched"`. `RequestMetrics`
is outermost ASGI middleware: it also counts what `BodyGuard` answers (413, 415, 400) before
routing, under the route the request was for.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds: from a cached query to a command waiting for its result (`wait` is at most 60)."""


class GatewayMetrics:
    """The gateway's metrics, in a registry of their own (one per app, so tests do not share)."""

    def __init__(self, prefix: str, registry: CollectorRegistry | None = None) -> None:
        self.prefix = prefix
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "cqrs_gateway_requests_total", "HTTP requests answered, by route template and status.",
            ["prefix", "method", "route", "status"], registry=self.registry)
        self.duration = Histogram(
            "cqrs_gateway_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ["prefix", "method", "route"], buckets=BUCKETS, registry=self.registry)
        self.auth_failures = Counter(
            "cqrs_gateway_auth_failures_total",
            "Requests refused for their API key: missing, malformed, unknown (401), scope (403).",
            ["prefix", "reason"], registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(self.prefix, method, route, str(status)).inc()
        self.duration.labels(self.prefix, method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The template of the route `scope` is for: the one routing chose (`scope["route"]`), or,
    for a request answered before routing (`BodyGuard`), the route its path and method match (a
    path match with another method counts: it is answered 405 there); else `UNMATCHED`."""
    chosen = getattr(scope.get("route"), "path", None)
    if isinstance(chosen, str):
        return chosen
    partial: str | None = None
    for route in _flat(routes):
        match, _ = route.matches(scope)
        path = getattr(route, "path", None)
        if match == Match.FULL and isinstance(path, str):
            return path
        if match == Match.PARTIAL and partial is None and isinstance(path, str):
            partial = path
    return partial or UNMATCHED


def _flat(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes, with those of included routers (FastAPI wraps an included `APIRouter`,
    whose routes carry their full paths, in a route of its own) in their place."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _flat(included.routes)
        else:
            yield route


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request into `app.state.metrics`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        application: Any = scope["app"]

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics: GatewayMetrics = application.state.metrics
            route = route_template(application.router.routes, scope)
            metrics.observe(scope["method"], route, status, time.perf_counter() - started)


async def serve_metrics(request: Request) -> Response:
    """`GET /metrics`: the app's registry in Prometheus's text format."""
    metrics: GatewayMetrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
