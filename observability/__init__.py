"""What every long-running process serves over HTTP: `/metrics`, `/livez`, `/readyz`.

One answer type (`Verdict`), one set of body words (`LIVENESS`, `READINESS`) and one server
(`serve`, `HealthServer`) for the processor and the projectors; the gateway answers with the
same words from its own app. Each process keeps its own `HealthCheck` (what makes it live and
ready differs), and a registry of its own. Imports only the standard library and
prometheus-client, so both sides may depend on it.
"""

from observability.health import LIVENESS, READINESS, HealthCheck, Verdict, Words
from observability.server import HealthServer, health_app, serve, served

__all__ = ["LIVENESS", "READINESS", "HealthCheck", "HealthServer", "Verdict", "Words",
           "health_app", "serve", "served"]
