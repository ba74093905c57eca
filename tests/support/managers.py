"""`python -m cqrs manage` as a subprocess against a test prefix, and what the tests read back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.processor import ROOT, Read, read_all
from topics import Catalogue, decode_command


class ManagerProcess:
    """`python -m cqrs manage` (no metrics port), its JSON log appended to `log_path`."""

    def __init__(self, kafka_config: dict[str, str], catalogue: Catalogue,
                 log_path: Path) -> None:
        env = {**os.environ,
               "CQRS_KAFKA_BOOTSTRAP": kafka_config["bootstrap.servers"],
               "CQRS_TOPIC_PREFIX": catalogue.prefix,
               "CQRS_PARTITIONS": str(catalogue.partitions)}
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "cqrs", "manage", "--metrics-port", "0"],
                cwd=ROOT, env=env, stdout=log, stderr=log)

    def stop(self, timeout: float = 60) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(30)

    def log(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        found = []
        for line in lines:
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def totals(self, stage: str) -> dict[str, int]:
        """The stage's last logged totals (consumed, applied, skipped, dead_lettered, commands);
        zeros before its first `totals` line."""
        found = dict.fromkeys(("consumed", "applied", "skipped", "dead_lettered", "commands"), 0)
        for line in self.log():
            if line.get("event") == "totals" and line.get("stage") == stage:
                found = dict(line["totals"])
        return found

    def cancels_logged(self) -> int:
        return sum(line.get("event") == "cancel sent" for line in self.log())


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def manager_commands(kafka_config: dict[str, str], catalogue: Catalogue) -> list[Read]:
    """The records of the commands topic that the managers sent (`issued_by` manager.*)."""
    found = []
    for record in read_all(kafka_config, catalogue.commands.name):
        try:
            command = decode_command(record.value or b"")
        except Exception:
            continue
        if (command.issued_by or "").startswith("manager."):
            found.append(record)
    return found
