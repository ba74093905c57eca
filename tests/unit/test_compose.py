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
