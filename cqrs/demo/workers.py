"""Start the processor, projectors and process managers the demo needs, unless their groups
already have members."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

WORKERS: dict[str, list[str]] = {
    "processor": ["processor"],
    "projector.postgres": ["project", "postgres"],
    "projector.search": ["project", "search"],
    "managers": ["manage"],
}
"""Group suffix (after the prefix) → `cqrs` arguments of the worker that joins that group."""


def group_has_members(admin: AdminClient, group: str, timeout: float = 10.0) -> bool:
    """True when consumer group `group` has at least one live member."""
    future = admin.describe_consumer_groups([group], request_timeout=timeout)[group]
    try:
        description: Any = future.result(timeout=timeout)
    except Exception:
        return False
    return bool(description.members)


class Workers:
    """The worker processes the demo started itself (and only those), stopped by `stop`."""

    def __init__(self, kafka_config: dict[str, Any], prefix: str, log_dir: Path) -> None:
        self._admin = AdminClient(kafka_config)
        self._prefix = prefix
        self._log_dir = log_dir
        self._started: dict[str, subprocess.Popen[bytes]] = {}

    def ensure(self, say: Callable[[str], None]) -> None:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        for name, args in WORKERS.items():
            if group_has_members(self._admin, f"{self._prefix}{name}"):
                say(f"{name}: already running")
                continue
            log_file = self._log_dir / f"{name}.log"
            with open(log_file, "ab") as log:
                self._started[name] = subprocess.Popen(
                    [sys.executable, "-m", "cqrs", *args],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=dict(os.environ),
                    start_new_session=True,
                )
            say(f"{name}: started (pid {self._started[name].pid}), log {log_file}")

    def exited(self) -> list[str]:
        """What the demo started that has died since, each with the log to read."""
        return [
            f"{name} exited with status {proc.returncode}; see {self._log_dir / f'{name}.log'}"
            for name, proc in self._started.items()
            if proc.poll() is not None
        ]

    def stop(self, say: Callable[[str], None]) -> None:
        for proc in self._started.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self._started.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            say(f"{name}: stopped")
        self._started.clear()
