"""The default ports of the processes' `/metrics`, `/livez`, `/readyz` (docs/observability.md).

Defined here only: `Settings` takes them as its defaults (`CQRS_*_METRICS_PORT` moves each), and
`Config`, `cqrs top` and the native Prometheus's targets (`Layout`) follow the settings.
`docker-compose.yml` and `deploy/prometheus/prometheus-compose.yml` repeat them as literals;
tests/unit/test_compose.py checks that they agree with these.
"""

from __future__ import annotations

from typing import Final

PROCESSOR: Final = 9401
PROJECTOR_POSTGRES: Final = 9402
PROJECTOR_SEARCH: Final = 9403
MANAGERS: Final = 9404
"""`cqrs manage` (the process managers); `CQRS_MANAGERS_METRICS_PORT` or `--metrics-port`."""
