"""`serve`: `/metrics`, `/livez` and `/readyz` from a daemon thread (stdlib wsgiref).

The thread answers whatever the process's loop is doing: a scrape never waits for a batch, and
a loop that stopped turning is reported (`/livez` 503) rather than unanswered. `/metrics` is
prometheus-client's WSGI app over the process's own registry; `/livez` and `/readyz` answer 200
or 503 with `Verdict.body`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from observability.health import LIVENESS, READINESS, HealthCheck, Verdict, Words

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds: no access line each (stderr is the process's JSON log)."""


def health_app(registry: CollectorRegistry, health: HealthCheck) -> WsgiApp:
    """`/metrics` from `registry`, `/livez` and `/readyz` from `health`; 404 otherwise."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start)  # type: ignore[no-any-return]
        if path == "/livez":
            return _answer(start, health.liveness(), LIVENESS)
        if path == "/readyz":
            return _answer(start, health.readiness(), READINESS)
        start("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: /metrics, /livez, /readyz\n"]

    return app


def _answer(start: StartResponse, verdict: Verdict, words: Words) -> list[bytes]:
    body = json.dumps(verdict.body(words)).encode()
    start("200 OK" if verdict.ok else "503 Service Unavailable",
          [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class HealthServer:
    """`health_app` on `host:port` until `close`; port 0 picks a free one (`port`).

    Raises `OSError` when the port cannot be bound (in use, not allowed)."""

    def __init__(self, registry: CollectorRegistry, health: HealthCheck, port: int,
                 host: str) -> None:
        self._server = make_server(host, port, health_app(registry, health),
                                   ThreadingWSGIServer, _QuietHandler)
        self.port: int = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="health-http", daemon=True)
        self._thread.start()
        log.info("serving /metrics, /livez, /readyz",
                 extra={"fields": {"host": host, "port": self.port}})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve(port: int, registry: CollectorRegistry, health: HealthCheck,
          host: str = "0.0.0.0") -> HealthServer:  # noqa: S104 (scraped from other hosts)
    """Serve on `host:port` (0: a free port) until `close`; raises `OSError` if it cannot bind."""
    return HealthServer(registry, health, port, host)


@contextmanager
def served(port: int, registry: CollectorRegistry, health: HealthCheck,
           host: str = "0.0.0.0", hint: str = "") -> Iterator[HealthServer | None]:  # noqa: S104
    """The endpoints while the block runs; none for port 0. A port that cannot be bound is
    logged as an error (with `hint`) and the block runs without them: several workers on one
    host must not stop each other from starting (their scrape target shows down)."""
    if port == 0:
        yield None
        return
    try:
        server = serve(port, registry, health, host)
    except OSError as error:
        log.error("metrics, liveness and readiness NOT served: port %d cannot be bound (%s)%s",
                  port, error, f"; {hint}" if hint else "")
        yield None
        return
    try:
        yield server
    finally:
        server.close()
