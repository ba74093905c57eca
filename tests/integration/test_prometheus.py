"""A real Prometheus, started by the native runner's code, scrapes a pipeline started for the
test, records its rules and raises the shipped alerts (with a lower threshold and `for`).

Why two ways of stopping a projector: a projector reports its own lag, so a projector that is
stopped (SIGSTOP, SIGTERM) reports nothing: Prometheus sees its target down
(`CqrsProjectorDown`). `CqrsProjectorLagging` is for a projector that runs but cannot apply:
here its Elasticsearch goes away (a proxy the test cuts) while commands keep coming.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cqrs.services import Layout, Runner
from cqrs.services.layout import PROMETHEUS_RULES
from tests.support.pipeline import Pipeline, free_port, running_pipeline
from tests.support.processor import command, produce
from tests.support.services import Endpoints

RECORDING, ALERTS = PROMETHEUS_RULES


class CuttableProxy:
    """A TCP forwarder to `target`; `cut()` drops every connection and refuses new ones (the
    store is gone for the client), `resume()` forwards again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def cut(self) -> None:
        self.open.clear()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def resume(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def _test_alerts(directory: Path) -> Path:
    """The shipped alerts, lag threshold 30 s -> 2 s and `for` 1m -> 1s: same expressions."""
    document: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    for rule in document["groups"][0]["rules"]:
        if rule["alert"] == "CqrsProjectorLagging":
            assert rule["expr"].endswith("> 30")
            rule["expr"] = rule["expr"][: -len("30")] + "2"
        if "for" in rule:
            rule["for"] = "1s"
    path = directory / "alerts.yml"
    path.write_text(yaml.safe_dump(document))
    return path


class PromAPI:
    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=10)

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.client.get("/api/v1/query", params={"query": expr}).json()
        assert body["status"] == "success", body
        return body["data"]["result"]  # type: ignore[no-any-return]

    def alerts(self, name: str) -> list[dict[str, Any]]:
        body = self.client.get("/api/v1/alerts").json()
        return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == name]


def _wait(check: Any, timeout: float, what: str, pipeline: Pipeline) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {what}\n{pipeline.log_tail()}")
        time.sleep(0.5)


@contextlib.contextmanager
def _traffic(pipeline: Pipeline) -> Iterator[list[int]]:
    """CreateUser commands, 20 a second, until the block ends; yields the count sent."""
    sent, stop = [0], threading.Event()
    run = uuid_prefix = f"p{os.getpid()}t{int(time.time())}"

    def send() -> None:
        while not stop.is_set():
            batch = [command("CreateUser", f"{run}-{sent[0] + i}",
                             {"email": f"{uuid_prefix}-{sent[0] + i}@example.com",
                              "name": f"User {sent[0] + i}"}) for i in range(10)]
            sent[0] += produce(pipeline.kafka_config, pipeline.catalogue.commands.name, batch,
                               pipeline.catalogue.partitions)
            stop.wait(0.5)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        yield sent
    finally:
        stop.set()
        thread.join(30)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Not under pytest's 0700 tmp: as root, Prometheus runs as the service user, who must
    # reach its directory.
    path = Path(tempfile.mkdtemp(prefix="cqrs-prometheus-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_prometheus_scrapes_the_pipeline_and_raises_the_alerts(
    endpoints: Endpoints, tmp_path: Path, state_dir: Path
) -> None:
    assert shutil.which("prometheus"), "prometheus is not installed: bash .ci/setup installs it"
    workers = {"processor": free_port(), "postgres": free_port(), "search": free_port()}
    ports = {"cqrs-processor": workers["processor"],
             "cqrs-projector-postgres": workers["postgres"],
             "cqrs-projector-search": workers["search"]}
    es = urllib.parse.urlsplit(endpoints.es_url)
    proxy = CuttableProxy((es.hostname or "127.0.0.1", es.port or 9200))
    through_proxy = dataclasses.replace(endpoints, es_url=f"http://127.0.0.1:{proxy.port}")
    layout = Layout(state_dir=state_dir, cache_dir=state_dir / "cache",
                    prometheus_port=free_port(), scrape_interval_s=1.0,
                    metrics_targets={job: (f"127.0.0.1:{port}",) for job, port in ports.items()},
                    prometheus_rules=(RECORDING, _test_alerts(tmp_path)))
    runner, said = Runner(layout, ["prometheus"]), []
    try:
        with running_pipeline(through_proxy, tmp_path, kind="prom",
                              metrics_ports=workers) as pipeline:
            runner.up(said.append)
            try:
                prometheus = PromAPI(layout.prometheus_url)
                try:
                    _scrape_alert_and_stop(pipeline, prometheus, proxy)
                finally:
                    prometheus.client.close()
            finally:
                proxy.resume()
                assert runner.down(said.append), said
    finally:
        proxy.close()


def _scrape_alert_and_stop(pipeline: Pipeline, prometheus: PromAPI, proxy: CuttableProxy) -> None:
    prefix = pipeline.settings.topic_prefix
    with _traffic(pipeline):
        accepted = _wait(lambda: prometheus.query(
            f'cqrs_processor_records_total{{prefix="{prefix}",outcome="accepted"}} > 0'),
            90, "the processor's accepted commands in Prometheus", pipeline)
        assert accepted[0]["metric"]["job"] == "cqrs-processor"
        applied = _wait(lambda: len(prometheus.query(
            f'cqrs_projector_records_total{{prefix="{prefix}",outcome="applied"}} > 0')) == 2,
            90, "both projectors' applied events in Prometheus", pipeline)
        assert applied
        _wait(lambda: prometheus.query(f'cqrs:projector_records:rate1m{{prefix="{prefix}"}}'),
              30, "a recording rule's series", pipeline)
        assert not prometheus.alerts("CqrsProjectorLagging")

        # The search projector runs, but its store is gone: it retries, and falls behind.
        proxy.cut()
        lagging = _wait(lambda: [a for a in prometheus.alerts("CqrsProjectorLagging")
                                 if a["labels"]["projector"] == "search"],
                        90, "CqrsProjectorLagging for the search projector", pipeline)
        assert lagging[0]["state"] in {"pending", "firing"}
        assert lagging[0]["labels"]["prefix"] == prefix
        proxy.resume()

        # The postgres projector stops answering at all.
        postgres = pipeline.workers["postgres"]
        os.kill(postgres.pid, signal.SIGSTOP)
        try:
            down = _wait(lambda: [a for a in prometheus.alerts("CqrsProjectorDown")
                                  if a["labels"]["job"] == "cqrs-projector-postgres"],
                         60, "CqrsProjectorDown for the stopped postgres projector", pipeline)
            assert down[0]["state"] in {"pending", "firing"}
        finally:
            os.kill(postgres.pid, signal.SIGCONT)
    assert not prometheus.alerts("CqrsProcessorDown"), json.dumps(
        prometheus.alerts("CqrsProcessorDown"))
