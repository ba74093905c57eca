"""docker-compose.yml and the native runner agree on versions and ports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cqrs import metrics_ports
from cqrs.services import layout

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


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
        "gateway": ["gateway", "--host", "0.0.0.0", "--port", "8000", "--allow-unauthenticated"],
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


@pytest.mark.parametrize(
    ("service", "port"),
    [("processor", metrics_ports.PROCESSOR),
     ("projector-postgres", metrics_ports.PROJECTOR_POSTGRES),
     ("projector-search", metrics_ports.PROJECTOR_SEARCH),
     ("gateway", 8000)],
)
def test_workers_are_healthy_when_ready(services: dict[str, Any], service: str, port: int) -> None:
    """The healthcheck asks the process's /readyz on the spec's port (503 while restoring,
    rebalancing or retrying a store that is down)."""
    test = " ".join(services[service]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/readyz" in test


def test_prometheus_scrapes_every_worker_and_loads_the_shipped_rules(
    services: dict[str, Any],
) -> None:
    prometheus = services["prometheus"]
    debian_version = "2.42"  # .ci/setup installs Debian bookworm's prometheus for the runner
    assert prometheus["image"].startswith(f"prom/prometheus:v{debian_version}")
    assert "127.0.0.1:9090:9090" in prometheus["ports"]
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in prometheus["volumes"]}
    assert mounts["./deploy/prometheus/rules.yml"].startswith("/etc/prometheus/rules/")
    assert mounts["./deploy/prometheus/alerts.yml"].startswith("/etc/prometheus/rules/")
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus-compose.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    targets = {job["job_name"]: job["static_configs"][0]["targets"]
               for job in config["scrape_configs"]}
    assert targets["cqrs-processor"] == [f"processor:{metrics_ports.PROCESSOR}"]
    assert targets["cqrs-projector-postgres"] == [
        f"projector-postgres:{metrics_ports.PROJECTOR_POSTGRES}"]
    assert targets["cqrs-projector-search"] == [
        f"projector-search:{metrics_ports.PROJECTOR_SEARCH}"]
    assert targets["cqrs-gateway"] == ["gateway:8000"]
    # the same jobs as the native runner's generated config
    assert set(targets) - {"prometheus"} == set(layout.metrics_jobs())
    for job, port in layout.metrics_jobs().items():
        assert targets[job][0].endswith(f":{port}")


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard(
    services: dict[str, Any],
) -> None:
    grafana = services["grafana"]
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in grafana["volumes"]}
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./deploy/grafana/dashboards"] == "/var/lib/grafana/dashboards"
    source = ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml"
    datasource = yaml.safe_load(source.read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    dashboards = ROOT / "deploy/grafana/provisioning/dashboards/cqrs.yml"
    provider = yaml.safe_load(dashboards.read_text())["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/pipeline.json").read_text())
    uids = {target["datasource"]["uid"] for panel in dashboard["panels"]
            for target in panel.get("targets", [])}
    assert uids == {datasource["uid"]}
