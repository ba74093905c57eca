"""A whole pipeline per e2e module (`tests.support.pipeline.running_pipeline`): topics under a
fresh prefix, a fresh database, and the processor and both projectors as subprocesses.

Services come from `tests.support.services.resolve_endpoints` (environment, else testcontainers,
else a failure saying how to start them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.pipeline import ROOT, Pipeline, running_pipeline
from tests.support.services import Endpoints, resolve_endpoints

__all__ = ["ROOT", "Pipeline"]

PARTITIONS = 3


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    with resolve_endpoints() as found:
        yield found


@pytest.fixture(scope="module")
def pipeline(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with running_pipeline(endpoints, tmp_path_factory.mktemp("pipeline"), PARTITIONS) as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.e2e)
