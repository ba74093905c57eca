"""The native runner's layout and prerequisite checks (no services started)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cqrs.services import prereqs
from cqrs.services.errors import PortTaken, PrerequisiteMissing
from cqrs.services.layout import Layout
from cqrs.services.runner import Runner


def test_layout_reads_overrides_from_the_environment(tmp_path: Path) -> None:
    layout = Layout.from_env(
        {
            "CQRS_SERVICES_STATE_DIR": str(tmp_path / "state"),
            "CQRS_SERVICES_CACHE_DIR": str(tmp_path / "cache"),
            "CQRS_SERVICES_KAFKA_PORT": "19092",
            "CQRS_SERVICES_POSTGRES_PORT": "15432",
        }
    )
    assert layout.state_dir == tmp_path / "state"
    assert layout.kafka_bootstrap == "127.0.0.1:19092"
    assert layout.client_env()["CQRS_PG_DSN"].endswith("@127.0.0.1:15432/cqrs")
    assert layout.log_file("kafka") == tmp_path / "state/kafka/logs/kafka.log"


def _fake_jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    home.mkdir(parents=True)
    (home / "release").write_text(f'JAVA_VERSION="{version}"\n')
    return home


def test_java_of_the_right_version_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prereqs, "JVM_ROOT", tmp_path)
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("ES_JAVA_HOME", raising=False)
    _fake_jdk(tmp_path, "jdk-17", "17.0.15")
    newer = _fake_jdk(tmp_path, "jdk-25", "25.0.3")
    assert prereqs.find_java(21, "ES_JAVA_HOME", "Elasticsearch") == newer


def test_missing_java_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prereqs, "JVM_ROOT", tmp_path)
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("ES_JAVA_HOME", raising=False)
    _fake_jdk(tmp_path, "jdk-17", "17.0.15")
    with pytest.raises(PrerequisiteMissing, match=r"Java 21\+.*ES_JAVA_HOME"):
        prereqs.find_java(21, "ES_JAVA_HOME", "Elasticsearch")


def test_missing_maven_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(PrerequisiteMissing, match="apt-get install maven"):
        prereqs.find_maven()


def test_a_port_taken_by_another_process_is_refused(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        runner = Runner(Layout(state_dir=tmp_path, cache_dir=tmp_path), ["kafka"])
        with pytest.raises(PortTaken, match=f"port {port}.*CQRS_SERVICES_KAFKA_PORT"):
            runner._check_ports("kafka", (port,))


def test_unknown_service_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="unknown service"):
        Runner(Layout(state_dir=tmp_path, cache_dir=tmp_path), ["zookeeper"])
