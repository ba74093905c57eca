"""Where the real services are: testcontainers if a Docker engine answers, else the environment.

The native runner prints the environment: ``cqrs services up && eval "$(cqrs services env)"``.
With neither, every test here fails (never skips) with a message that says how to start them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.support.services import Endpoints, resolve_endpoints


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    with resolve_endpoints() as found:
        yield found


@pytest.fixture
def kafka_config(endpoints: Endpoints) -> dict[str, str]:
    return {"bootstrap.servers": endpoints.kafka_bootstrap}


@pytest.fixture
def pg_dsn(endpoints: Endpoints) -> str:
    return endpoints.pg_dsn


@pytest.fixture
def es_url(endpoints: Endpoints) -> str:
    return endpoints.es_url


@pytest.fixture
def topic_prefix() -> str:
    """A fresh topic namespace per test, so tests never see each other's records."""
    return f"test-{uuid.uuid4().hex[:10]}."


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.integration)
