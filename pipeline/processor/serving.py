"""The processor's HTTP endpoints: `/metrics` (Prometheus), `/livez` and `/readyz` (JSON).

A stdlib WSGI server in a daemon thread, apart from the transaction loop: a scrape never waits
for a batch, and a stuck loop still answers (`/livez` 503). Health bodies are
`{"status": "ready"|"not ready"|"alive"|"not alive", "reason": ...}`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from pipeline.processor.health import Health, Verdict

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr (the process's stderr is its JSON log)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def health_app(registry: CollectorRegistry, health: Health) -> WsgiApp:
    """`/metrics` from `registry`, `/livez` and `/readyz` from `health`; 404 otherwise."""
    metrics = make_wsgi_app(registry)

    def verdict(found: Verdict, yes: str, no: str, start: StartResponse) -> list[bytes]:
        body = json.dumps({"status": yes if found.ok else no, "reason": found.reason}).encode()
        status = "200 OK" if found.ok else "503 Service Unavailable"
        start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/livez":
            return verdict(health.liveness(), "alive", "not alive", start)
        if path == "/readyz":
            return verdict(health.readiness(), "ready", "not ready", start)
        if path == "/metrics":
            return metrics(environ, start)  # type: ignore[no-any-return]
        start("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: /metrics, /livez, /readyz\n"]

    return app


class HealthServer:
    """Serves `health_app` on `host:port` until `close`; port 0 picks a free one (`port`).

    Raises `OSError` when the port cannot be bound (in use, not allowed)."""

    def __init__(self, registry: CollectorRegistry, health: Health, port: int, host: str) -> None:
        self._server = make_server(
            host, port, health_app(registry, health), ThreadingWSGIServer, _QuietHandler
        )
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="processor-http", daemon=True
        )
        self._thread.start()
        log.info("serving metrics and health", extra={"fields": {"port": self.port}})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
