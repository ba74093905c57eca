"""`serve`: a projector's `/metrics`, `/livez` and `/readyz`, from a daemon thread (stdlib wsgiref).

The thread answers whatever the event loop is doing, so a loop that stopped turning is reported
(`/livez` 503) rather than unanswered. `/metrics` is prometheus-client's WSGI app over the
projector's own registry; `/livez` and `/readyz` answer 200 or 503 with a small JSON body
`{"status": ..., "reason": ...}` from `Health`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from projections.runtime.health import Health, Status

logger = logging.getLogger("projections.runtime")

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds: not worth a log line each."""


class MetricsServer:
    """A running server; `port` is the one bound (useful with port 0 in tests), `close` stops."""

    def __init__(self, server: WSGIServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="projector-metrics",
                                        daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def health_app(registry: CollectorRegistry, health: Health) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: `/metrics` (the registry), `/livez`, `/readyz`; 404 elsewhere."""
    metrics = make_wsgi_app(registry)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        if path == "/livez":
            return _status(start_response, health.liveness(), "live")
        if path == "/readyz":
            return _status(start_response, health.readiness(), "ready")
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: /metrics, /livez, /readyz\n"]

    return app


def _status(start_response: StartResponse, status: Status, word: str) -> list[bytes]:
    body = json.dumps(status.body(word)).encode()
    start_response("200 OK" if status.ok else "503 Service Unavailable",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def serve(port: int, registry: CollectorRegistry, health: Health,
          host: str = "0.0.0.0") -> MetricsServer:  # noqa: S104 (scraped from other hosts)
    """Serve on `host:port` (0: a free port) until `close`; raises `OSError` if it cannot bind."""
    server = make_server(host, port, health_app(registry, health), server_class=_Server,
                         handler_class=_QuietHandler)
    found = MetricsServer(server)
    logger.info("serving /metrics, /livez, /readyz on %s:%d", host, found.port)
    return found
