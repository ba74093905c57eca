"""The native runner's layout and prerequisite checks (no services started)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cqrs.services import prereqs
from cqrs.services.credentials import ensure_secret
from cqrs.services.errors import PortTaken, PrerequisiteMissing
from cqrs.services.layout import Layout
from cqrs.services.postgres import HBA
from cqrs.services.process import boot_id, read_pid, start_ticks, write_pid_file
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
    assert str(layout.client_env()["CQRS_PG_DSN"]).endswith("@127.0.0.1:15432/cqrs")
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


@pytest.fixture
def unrelated_process() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not a service (what a reused pid points to after a reboot)."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_recorded_process_is_recognised(
    tmp_path: Path, unrelated_process: subprocess.Popen[bytes]
) -> None:
    pid_file = tmp_path / "x.pid"
    write_pid_file(pid_file, unrelated_process.pid)
    assert read_pid(pid_file) == unrelated_process.pid


def test_a_pid_reused_by_another_process_is_not_trusted(
    tmp_path: Path, unrelated_process: subprocess.Popen[bytes]
) -> None:
    pid_file = tmp_path / "x.pid"
    ticks = start_ticks(unrelated_process.pid)
    assert ticks is not None
    # Recorded for an earlier process with that pid (another start time), or in another boot.
    pid_file.write_text(f"{unrelated_process.pid} {ticks - 1} {boot_id()}\n")
    assert read_pid(pid_file) is None
    pid_file.write_text(f"{unrelated_process.pid} {ticks} 00000000-not-this-boot\n")
    assert read_pid(pid_file) is None


def test_an_old_pid_only_file_is_trusted_only_for_the_service_command_line(
    tmp_path: Path, unrelated_process: subprocess.Popen[bytes]
) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{unrelated_process.pid}\n")
    assert read_pid(pid_file) is None
    assert read_pid(pid_file, lambda argv: argv == ["sleep", "60"]) == unrelated_process.pid
    service = Runner(Layout(state_dir=tmp_path, cache_dir=tmp_path), ["kafka"]).services[0]
    assert not service.owns(["sleep", "60"])
    assert service.owns(["java", "kafka.Kafka", str(tmp_path / "kafka/config/server.properties")])
    assert not service.owns(["java", "kafka.Kafka", str(tmp_path / "kafka2/server.properties")])


def test_a_dead_pid_is_not_running(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{_dead_pid()} 1 {boot_id()}\n")
    assert read_pid(pid_file) is None


@pytest.mark.parametrize("dead", [True, False])
def test_stale_pid_files_are_neither_running_nor_signalled(
    tmp_path: Path, unrelated_process: subprocess.Popen[bytes], dead: bool
) -> None:
    layout = Layout(state_dir=tmp_path, cache_dir=tmp_path)
    runner = Runner(layout, ["kafka", "elasticsearch", "postgres"])
    pid = _dead_pid() if dead else unrelated_process.pid
    for service in runner.services:
        layout.pid_file(service.name).parent.mkdir(parents=True, exist_ok=True)
        layout.pid_file(service.name).write_text(f"{pid}\n")
    assert all(status.pid is None and not status.ready for status in runner.status())
    said: list[str] = []
    assert runner.down(said.append)
    assert unrelated_process.poll() is None, "down signalled an unrelated process"
    assert sum("stale pid file" in line for line in said) == 3, said
    assert not any(layout.pid_file(s.name).exists() for s in runner.services)


def test_the_postgres_password_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "postgres" / "cqrs.password"
    first = ensure_secret(path)
    assert len(first) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    assert ensure_secret(path) == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_services_env_exports_the_generated_password(tmp_path: Path) -> None:
    layout = Layout(state_dir=tmp_path, cache_dir=tmp_path, postgres_port=15432)
    assert layout.client_env()["CQRS_PG_DSN"] == "postgresql://cqrs@127.0.0.1:15432/cqrs"
    password = ensure_secret(layout.postgres_password_file)
    assert layout.client_env()["CQRS_PG_DSN"] == (
        f"postgresql://cqrs:{password}@127.0.0.1:15432/cqrs")


def test_the_cluster_asks_every_connection_for_a_password() -> None:
    rules = [line.split() for line in HBA.splitlines() if line and not line.startswith("#")]
    assert {rule[0] for rule in rules} == {"local", "host"}
    assert all(rule[-1] == "scram-sha-256" for rule in rules)
    assert "trust" not in HBA
