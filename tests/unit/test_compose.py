"""docker-compose.yml and the native runner agree on versions and ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cqrs.services import layout

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document["services"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("service", "version", "port"),
    [
        ("kafka", layout.KAFKA_VERSION, 9092),
        ("elasticsearch", layout.ELASTICSEARCH_VERSION, 9200),
        ("postgres", str(layout.POSTGRES_MAJOR), 5432),
    ],
)
def test_image_version_and_port_match_the_native_runner(
    services: dict[str, Any], service: str, version: str, port: int
) -> None:
    image: str = services[service]["image"]
    assert image.rsplit(":", 1)[1] == version
    assert f"127.0.0.1:{port}:{port}" in services[service]["ports"]


def test_native_defaults_use_the_same_ports() -> None:
    native = layout.Layout.from_env({})
    assert (native.kafka_port, native.elasticsearch_port, native.postgres_port) == (
        9092,
        9200,
        5432,
    )


def test_heaps_match(services: dict[str, Any]) -> None:
    native_heap = layout.Layout.from_env({}).heap_mb
    assert f"-Xmx{native_heap}m" in services["kafka"]["environment"]["KAFKA_HEAP_OPTS"]
    assert f"-Xmx{native_heap}m" in services["elasticsearch"]["environment"]["ES_JAVA_OPTS"]


def test_pipeline_services_run_the_project_image_on_in_network_addresses(
    services: dict[str, Any],
) -> None:
    commands = {
        "topics": ["topics", "apply"],
        "processor": ["processor"],
        "projector-postgres": ["project", "postgres"],
        "projector-search": ["project", "search"],
        "gateway": ["gateway", "--host", "0.0.0.0", "--port", "8000"],
    }
    kafka = services["kafka"]["environment"]
    assert "INTERNAL://kafka:29092" in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "INTERNAL://:29092" in kafka["KAFKA_LISTENERS"].split(",")
    assert "INTERNAL:PLAINTEXT" in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    for name, command in commands.items():
        service = services[name]
        assert service["build"] == "."
        assert service["image"] == services["processor"]["image"]
        assert service["command"] == command
        assert service["environment"] == {
            "CQRS_KAFKA_BOOTSTRAP": "kafka:29092",
            "CQRS_PG_DSN": "postgresql://cqrs:cqrs@postgres:5432/cqrs",
            "CQRS_ES_URL": "http://elasticsearch:9200",
        }
        depends = service["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        if name != "topics":
            assert depends["topics"]["condition"] == "service_completed_successfully"
    assert services["projector-postgres"]["depends_on"]["postgres"]["condition"] == (
        "service_healthy")
    assert services["projector-search"]["depends_on"]["elasticsearch"]["condition"] == (
        "service_healthy")
    assert "127.0.0.1:8000:8000" in services["gateway"]["ports"]
