"""The gateway's /metrics, /livez and /readyz, and its per-command debug line, over fakes."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cqrs.bootstrap import Bootstrap
from cqrs.gateway import create_app
from tests.unit.test_gateway import ALICE, Fakes

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def client(fakes: Fakes) -> Iterator[TestClient]:
    with TestClient(create_app(Bootstrap(services=fakes.services).open_services,
                               prefix="t.")) as test_client:
        yield test_client


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def count(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], method: str, route: str,
          status: str) -> float:
    labels = (("method", method), ("prefix", "t."), ("route", route), ("status", status))
    return found.get(("cqrs_gateway_requests_total", labels), 0.0)


def test_requests_are_counted_by_route_template_never_the_raw_path(
    client: TestClient, fakes: Fakes,
) -> None:
    fakes.put_user("u1")
    for user_id in ("u1", "u2", "u3"):
        client.get(f"/users/{user_id}")
    client.post("/commands/CreateUser", json={"aggregate_id": "u9", "data": ALICE})
    client.post("/commands/CreateUser", content=b"x", headers={"content-type": "text/plain"})
    client.get("/no/such/route")
    found = samples(client)
    assert count(found, "GET", "/users/{user_id}", "200") == 1
    assert count(found, "GET", "/users/{user_id}", "404") == 2
    assert count(found, "POST", "/commands/CreateUser", "202") == 1
    assert count(found, "POST", "/commands/CreateUser", "415") == 1  # answered by BodyGuard
    assert count(found, "GET", "unmatched", "404") == 1
    assert not any("u2" in value for (_, labels) in found for _, value in labels)
    duration = ("cqrs_gateway_request_duration_seconds_count",
                (("method", "GET"), ("prefix", "t."), ("route", "/users/{user_id}")))
    assert found[duration] == 3


def test_each_app_has_its_own_registry(fakes: Fakes) -> None:
    with TestClient(create_app(Bootstrap(services=fakes.services).open_services)) as one, \
            TestClient(create_app(Bootstrap(services=fakes.services).open_services)) as two:
        one.get("/livez")
        assert "/livez" in one.get("/metrics").text
        assert "/livez" not in two.get("/metrics").text


def test_livez_and_readyz(client: TestClient, fakes: Fakes) -> None:
    assert client.get("/livez").json() == {"status": "alive", "reason": "answering requests"}
    not_ready = client.get("/readyz")  # the fakes' Elasticsearch check fails
    assert not_ready.status_code == 503
    assert not_ready.json()["status"] == "not ready"
    assert "elasticsearch: ConnectionError: refused" in not_ready.json()["reason"]
    assert client.get("/healthz").status_code == 503


def test_readyz_once_every_service_answers(fakes: Fakes) -> None:
    async def services(config: object) -> object:
        built = await fakes.services(config)  # type: ignore[arg-type]

        async def ok() -> None:
            return None

        built.health = {"kafka": ok, "postgres": ok, "elasticsearch": ok}
        return built

    app = create_app(Bootstrap(services=services).open_services)  # type: ignore[arg-type]
    assert TestClient(app).get("/readyz").json() == {"status": "not ready", "reason": "starting"}
    with TestClient(app) as client:
        assert client.get("/readyz").json() == {
            "status": "ready", "reason": "kafka, postgres, elasticsearch answer"}


def test_a_command_is_logged_with_its_ids_and_correlation(
    client: TestClient, fakes: Fakes, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="cqrs.gateway"):
        client.post("/commands/CreateUser",
                    json={"aggregate_id": "u1", "data": ALICE, "command_id": "c-1"})
        client.post("/commands/CreateUser", headers={"X-Correlation-ID": "req-7"},
                    json={"aggregate_id": "u2", "data": ALICE, "command_id": "c-2"})
    lines = [(r.command_id, r.correlation_id, r.stream_id)  # type: ignore[attr-defined]
             for r in caplog.records if r.getMessage() == "command accepted for sending"]
    assert lines == [("c-1", "c-1", "user-u1"), ("c-2", "req-7", "user-u2")]
    assert [sent.correlation_id for sent in fakes.commands.sent] == [None, "req-7"]
    bad = client.post("/commands/CreateUser", headers={"X-Correlation-ID": "has spaces"},
                      json={"aggregate_id": "u3", "data": ALICE})
    assert bad.status_code == 422
