"""The one health server every process uses: same words, same bodies, a taken port survived."""

from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from observability import LIVENESS, READINESS, HealthCheck, serve, served
from pipeline.processor.health import ProcessorHealth
from projections.runtime.health import ProjectorHealth


def get(url: str) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize("health", [ProcessorHealth(), ProjectorHealth()],
                         ids=["processor", "projector"])
def test_both_sides_answer_with_the_same_words(health: HealthCheck) -> None:
    server = serve(0, CollectorRegistry(), health, host="127.0.0.1")
    try:
        status, body = get(f"http://127.0.0.1:{server.port}/livez")
        assert (status, body["status"]) == (200, LIVENESS.yes)
        status, body = get(f"http://127.0.0.1:{server.port}/readyz")
        assert (status, body["status"]) == (503, READINESS.no)
    finally:
        server.close()


def test_served_skips_port_0_and_logs_a_taken_port(caplog: pytest.LogCaptureFixture) -> None:
    with served(0, CollectorRegistry(), ProjectorHealth()) as none:
        assert none is None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="observability"), served(
                port, CollectorRegistry(), ProjectorHealth(), host="127.0.0.1",
                hint="another --metrics-port") as server:
            assert server is None
    [line] = caplog.records
    assert "NOT served" in line.getMessage()
    assert "another --metrics-port" in line.getMessage()
