"""`cqrs services up` is idempotent and `status` reports each running service."""

from __future__ import annotations

import pytest

from cqrs.services import Layout, Runner
from cqrs.services.process import read_pid


@pytest.fixture
def native_runner() -> Runner:
    layout = Layout.from_env()
    if read_pid(layout.pid_file("kafka"), Runner(layout, ["kafka"]).services[0].owns) is None:
        pytest.skip("the services were not started by the native runner (testcontainers run)")
    return Runner(layout)


def test_a_second_up_finds_the_services_running(native_runner: Runner) -> None:
    said: list[str] = []
    native_runner.up(said.append)
    for name in ("kafka", "elasticsearch", "postgres"):
        assert any(line.startswith(f"{name}: already running") for line in said), said
    assert not any("started" in line or "fetching" in line for line in said), said


def test_status_names_pid_log_and_memory(native_runner: Runner) -> None:
    statuses = native_runner.status()
    assert [s.name for s in statuses] == ["kafka", "elasticsearch", "postgres"]
    for status in statuses:
        assert status.ready
        assert status.pid is not None
        assert status.log_file.exists()
        assert status.rss_mib > 10
