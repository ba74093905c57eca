"""The managers' Prometheus metrics, on a registry the composition root passes in.

Every metric carries `prefix` (the topic prefix); `stage` is `router` or a manager's name.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

OUTCOMES = ("applied", "skipped", "dead_lettered")


class ManagerMetrics:
    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self.registry = registry
        self._prefix = prefix
        self._records = Counter(
            "cqrs_manager_records_total",
            "Records consumed per stage, by outcome (applied, skipped, dead_lettered)",
            ["prefix", "stage", "outcome"], registry=registry)
        self._commands = Counter(
            "cqrs_manager_commands_total", "CancelOrder commands sent (acknowledged by Kafka)",
            ["prefix", "stage", "reason"], registry=registry)
        self._customers = Gauge(
            "cqrs_manager_customers", "Customers in the manager's table (assigned partitions)",
            ["prefix", "stage"], registry=registry)
        self._open_orders = Gauge(
            "cqrs_manager_open_orders", "Open orders in the manager's table (assigned partitions)",
            ["prefix", "stage"], registry=registry)
        self._up = Gauge("cqrs_manager_up", "1 while the managers' process runs", ["prefix"],
                         registry=registry)
        self._up.labels(prefix).set(1)

    def record(self, stage: str, outcome: str, reason: str | None = None) -> None:
        del reason  # logged by the stage's totals, not a label (unbounded texts)
        self._records.labels(self._prefix, stage, outcome).inc()

    def command(self, stage: str, reason: str) -> None:
        self._commands.labels(self._prefix, stage, reason).inc()

    def tables(self, stage: str, customers: int, open_orders: int) -> None:
        self._customers.labels(self._prefix, stage).set(customers)
        self._open_orders.labels(self._prefix, stage).set(open_orders)
