"""One command followed through every log: `cqrs gateway`, the processor and both projectors run
as subprocesses at `--log-level DEBUG` (`CQRS_LOG_LEVEL`), each writing JSON lines; the command's
id and correlation id are found in all four, on lines with the shared field names."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.pipeline import ROOT, Pipeline, running_pipeline, wait_until
from tests.support.services import Endpoints

SHARED = ("ts", "level", "logger", "event")


@pytest.fixture(scope="module")
def pipeline(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with running_pipeline(endpoints, tmp_path_factory.mktemp("pipeline"), 3,
                          log_level="DEBUG") as running:
        yield running


@pytest.fixture(scope="module")
def gateway(pipeline: Pipeline) -> Iterator[str]:
    """`cqrs gateway` on a free port, logging to the pipeline's `gateway.log`; its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (pipeline.logs / "gateway.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cqrs", "gateway", "--port", str(port)], cwd=ROOT,
            env={**os.environ, **pipeline.env}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def live() -> bool:
            assert process.poll() is None, (pipeline.logs / "gateway.log").read_text()
            try:
                return httpx.get(f"{url}/livez", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(live, 30, "the gateway answers /livez", pipeline)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the log as JSON: fails, naming the line, on one that is not."""
    found = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        try:
            document = json.loads(line)
        except ValueError:
            raise AssertionError(f"{path.name}:{number} is not JSON: {line[:300]!r}") from None
        assert isinstance(document, dict), (path.name, number, line)
        assert all(name in document for name in SHARED), (path.name, number, line)
        found.append(document)
    return found


def test_one_command_is_found_in_every_log_by_its_ids(pipeline: Pipeline, gateway: str) -> None:
    tag = uuid.uuid4().hex[:8]
    command_id, correlation_id = f"cmd-{tag}", f"req-{tag}"
    response = httpx.post(
        f"{gateway}/commands/CreateUser?wait=30", timeout=40,
        headers={"X-Correlation-ID": correlation_id},
        json={"aggregate_id": f"u-{tag}", "command_id": command_id,
              "data": {"email": f"log.{tag}@example.com", "name": "Logan Trace"}})
    assert response.status_code == 200, (response.text, pipeline.log_tail())
    assert response.json()["event_ids"] == [f"user-u-{tag}@1"]
    assert httpx.get(f"{gateway}/readyz", timeout=20).json()["status"] == "ready"
    metrics = httpx.get(f"{gateway}/metrics", timeout=10).text
    assert 'route="/commands/CreateUser",status="200"' in metrics

    def mentioned(name: str) -> list[dict[str, Any]]:
        path = pipeline.logs / f"{name}.log"
        return [line for line in json_lines(path) if line.get("command_id") == command_id]

    def everywhere() -> bool:
        return all(mentioned(name) for name in ("gateway", "processor", "postgres", "search"))

    wait_until(everywhere, 30, f"{command_id} in every log", pipeline)
    [sent] = mentioned("gateway")
    assert (sent["event"], sent["correlation_id"], sent["stream_id"]) == (
        "command accepted for sending", correlation_id, f"user-u-{tag}")
    [decided] = mentioned("processor")
    assert (decided["event"], decided["correlation_id"], decided["event_ids"]) == (
        "accepted", correlation_id, [f"user-u-{tag}@1"])
    for projector in ("postgres", "search"):
        [applied] = mentioned(projector)
        assert applied["event"] == "applied", applied
        assert (applied["correlation_id"], applied["event_id"], applied["stream_id"]) == (
            correlation_id, f"user-u-{tag}@1", f"user-u-{tag}")
        assert isinstance(applied["partition"], int)
        assert isinstance(applied["offset"], int)
    # Faust's, mode's and aiokafka's own records are JSON lines too (checked by json_lines)
    loggers = {line["logger"].split(".")[0] for line in json_lines(pipeline.logs / "search.log")}
    assert {"faust", "projections"} <= loggers, loggers
