"""The secure services (`cqrs services up --secure`) for the tests that need them.

`secure_stack` (a session fixture, imported by the integration and end-to-end conftests) starts
Kafka, Elasticsearch and PostgreSQL with authentication and TLS in a temporary state directory on
free ports, beside (never instead of) the plaintext services of `cqrs services up`, and stops them
at the end of the session.

While working on one of them, start it yourself and point the tests at it, so that it is reused
and left running:

    CQRS_SERVICES_STATE_DIR=/tmp/secure CQRS_SERVICES_KAFKA_PORT=19092 \\
        CQRS_SERVICES_KAFKA_CONTROLLER_PORT=19093 cqrs services up --secure kafka
    CQRS_TEST_SECURE_STATE_DIR=/tmp/secure CQRS_TEST_SECURE_SERVICES=kafka pytest ...

(`CQRS_TEST_SECURE_STATE_DIR` is read as the state directory; ports and services come from the
same `CQRS_SERVICES_*` variables as `cqrs services up`'s.)
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from cqrs.services import Layout, Runner
from cqrs.services.credentials import Role, RoleFiles
from cqrs.services.layout import ROLE_VARIABLES, SECURE_VARIABLES
from cqrs.services.process import port_open
from cqrs.settings import Settings

ALL_SERVICES = ("kafka", "elasticsearch", "postgres")


def _free_base() -> int:
    """A base port such that base .. base+3 are free (Kafka broker and controller,
    Elasticsearch, PostgreSQL)."""
    for _ in range(50):
        base = random.randrange(21000, 59000, 10)
        if not any(port_open("127.0.0.1", base + offset) for offset in range(4)):
            return base
    raise RuntimeError("no free range of ports for the secure services")


@dataclass
class SecureStack:
    """Secure services, and how a test reaches them as one role or another."""

    layout: Layout
    services: tuple[str, ...]
    log: list[str] = field(default_factory=list)

    @property
    def roles(self) -> RoleFiles:
        return RoleFiles(self.layout.credentials_dir)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a subprocess (a `cqrs` entry point) pointed at these services:
        what `cqrs services env` exports, with no credential of any role set directly (each
        entry point reads its own role's file)."""
        env = {key: value for key, value in os.environ.items()
               if key not in ROLE_VARIABLES and key not in SECURE_VARIABLES
               and not key.startswith("CQRS_SERVICES_")}
        for key, value in self.layout.client_env().items():
            if value is not None:
                env[key] = value
        env.update(self.services_env())
        env.update(extra)
        return env

    def services_env(self) -> dict[str, str]:
        """The `CQRS_SERVICES_*` variables that make `cqrs services ...` act on these."""
        layout = self.layout
        return {
            "CQRS_SERVICES_STATE_DIR": str(layout.state_dir),
            "CQRS_SERVICES_KAFKA_PORT": str(layout.kafka_port),
            "CQRS_SERVICES_KAFKA_CONTROLLER_PORT": str(layout.kafka_controller_port),
            "CQRS_SERVICES_ELASTICSEARCH_PORT": str(layout.elasticsearch_port),
            "CQRS_SERVICES_POSTGRES_PORT": str(layout.postgres_port),
        }

    def settings(self, role: Role, **overrides: Any) -> Settings:
        """`role`'s settings: the secure services' addresses and its credentials file's values,
        whatever the test process's own environment says (plaintext services' variables)."""
        values: dict[str, Any] = {
            key.removeprefix("CQRS_").lower(): value
            for key, value in self.layout.client_env().items() if value is not None}
        values.update({key.removeprefix("CQRS_").lower(): value
                       for key, value in self.roles.read(role).items()})
        values.pop("credentials_dir", None)
        return Settings(**{**values, **overrides})


def _layout_from_env() -> Layout | None:
    state = os.environ.get("CQRS_TEST_SECURE_STATE_DIR")
    if not state:
        return None
    env = {**os.environ, "CQRS_SERVICES_STATE_DIR": state, "CQRS_SERVICES_SECURE": "true"}
    return Layout.from_env(env)


@pytest.fixture(scope="session")
def secure_stack() -> Iterator[SecureStack]:
    services = tuple(os.environ.get("CQRS_TEST_SECURE_SERVICES", ",".join(ALL_SERVICES))
                     .split(","))
    given = _layout_from_env()
    if given is not None:
        stack = SecureStack(given, services)
        Runner(given, list(services)).up(stack.log.append)
        yield stack
        return
    state = Path(tempfile.mkdtemp(prefix="cqrs-secure-"))
    base = _free_base()
    layout = replace(Layout.from_env({}), state_dir=state, kafka_port=base,
                     kafka_controller_port=base + 1, elasticsearch_port=base + 2,
                     postgres_port=base + 3, secure=True, kafka_nodes=1, heap_mb=384)
    stack = SecureStack(layout, services)
    runner = Runner(layout, list(services))
    try:
        started = time.monotonic()
        runner.up(stack.log.append)
        stack.log.append(f"secure services up in {time.monotonic() - started:.1f}s")
        yield stack
    finally:
        runner.down(stack.log.append)
        shutil.rmtree(state, ignore_errors=True)
