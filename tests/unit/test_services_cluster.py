"""`cqrs services up --kafka-nodes 3`: the layout, the nodes' rendered configs, and a runner that
covers every node (no process started)."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cqrs.cli.services import app
from cqrs.services.errors import ServiceError
from cqrs.services.kafka import Kafka
from cqrs.services.kafka_config import format_arguments, node_properties
from cqrs.services.layout import Layout
from cqrs.services.process import write_pid_file
from cqrs.services.runner import Runner, _stop_batches


def _cluster(tmp_path: Path, nodes: int = 3) -> Layout:
    return Layout(state_dir=tmp_path, cache_dir=tmp_path, kafka_nodes=nodes)


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_each_node_has_its_own_id_ports_and_data_but_the_same_voters(tmp_path: Path) -> None:
    layout = _cluster(tmp_path)
    rendered = [_properties(node_properties(layout, node, tmp_path / f"kafka-{node}/data"))
                for node in (1, 2, 3)]
    assert [config["node.id"] for config in rendered] == ["1", "2", "3"]
    assert {config["controller.quorum.voters"] for config in rendered} == {
        "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"}
    assert [config["listeners"] for config in rendered] == [
        f"PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{broker + 1}"
        for broker in (9092, 9094, 9096)]
    assert [config["advertised.listeners"] for config in rendered] == [
        "PLAINTEXT://127.0.0.1:9092", "PLAINTEXT://127.0.0.1:9094", "PLAINTEXT://127.0.0.1:9096"]
    assert len({config["log.dirs"] for config in rendered}) == 3
    assert all("controller.quorum.bootstrap.servers" not in config for config in rendered)
    assert {config["process.roles"] for config in rendered} == {"broker,controller"}


def test_a_cluster_replicates_the_internal_topics_three_ways(tmp_path: Path) -> None:
    config = _properties(node_properties(_cluster(tmp_path), 2, tmp_path))
    assert {name: config[name] for name in (
        "default.replication.factor", "min.insync.replicas",
        "offsets.topic.replication.factor", "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr", "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr", "unclean.leader.election.enable",
    )} == {"default.replication.factor": "3", "min.insync.replicas": "2",
           "offsets.topic.replication.factor": "3",
           "transaction.state.log.replication.factor": "3",
           "transaction.state.log.min.isr": "2",
           "share.coordinator.state.topic.replication.factor": "3",
           "share.coordinator.state.topic.min.isr": "2",
           "unclean.leader.election.enable": "false"}
    assert format_arguments(_cluster(tmp_path), "id") == ["-t", "id"]


def test_the_single_node_keeps_its_standalone_quorum_and_ports(tmp_path: Path) -> None:
    layout = _cluster(tmp_path, nodes=1)
    config = _properties(node_properties(layout, 1, tmp_path / "kafka/data"))
    assert config["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert config["transaction.state.log.replication.factor"] == "1"
    assert config["transaction.state.log.min.isr"] == "1"
    assert format_arguments(layout, "id") == ["--standalone", "-t", "id"]
    assert Kafka(layout, None).home == tmp_path / "kafka"
    assert layout.kafka_node_heap_mb == 512


def test_the_cluster_layout_comes_from_the_environment_or_the_last_up(tmp_path: Path) -> None:
    env = {"CQRS_SERVICES_STATE_DIR": str(tmp_path), "CQRS_SERVICES_KAFKA_PORT": "19092",
           "CQRS_SERVICES_KAFKA_CONTROLLER_PORT": "19093"}
    assert Layout.from_env(env).kafka_nodes == 1
    (tmp_path / "kafka-nodes").write_text("3\n")
    layout = Layout.from_env(env)
    assert layout.kafka_nodes == 3
    assert layout.kafka_bootstrap == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
    assert layout.kafka_node_heap_mb == 384
    assert Layout.from_env({**env, "CQRS_SERVICES_KAFKA_NODES": "1"}).kafka_nodes == 1
    assert Layout.from_env({**env, "CQRS_SERVICES_KAFKA_HEAP_MB": "256"}).kafka_node_heap_mb == 256
    for damaged in ("0", "12", "three"):
        (tmp_path / "kafka-nodes").write_text(damaged)
        assert Layout.from_env(env).kafka_nodes == 1


def test_env_prints_every_node_and_the_replication_factor(tmp_path: Path) -> None:
    ports = {"CQRS_SERVICES_STATE_DIR": str(tmp_path), "CQRS_SERVICES_KAFKA_PORT": "9092",
             "CQRS_SERVICES_KAFKA_CONTROLLER_PORT": "9093"}
    result = CliRunner().invoke(app, ["env"], env={**ports, "CQRS_SERVICES_KAFKA_NODES": "3"})
    assert result.exit_code == 0, result.output
    assert "export CQRS_KAFKA_BOOTSTRAP=127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096\n" in (
        result.output)
    assert "export CQRS_REPLICATION_FACTOR=3\n" in result.output
    single = CliRunner().invoke(app, ["env"], env={**ports, "CQRS_SERVICES_KAFKA_NODES": "1"})
    assert "export CQRS_KAFKA_BOOTSTRAP=127.0.0.1:9092\n" in single.output
    assert "export CQRS_REPLICATION_FACTOR=1\n" in single.output


@pytest.mark.parametrize(("nodes", "controller_port"), [(0, 9093), (10, 9093), (3, 9094)])
def test_impossible_layouts_are_refused(tmp_path: Path, nodes: int, controller_port: int) -> None:
    with pytest.raises(ValueError, match=r"kafka_nodes|overlap"):
        dataclasses.replace(_cluster(tmp_path), kafka_nodes=nodes,
                            kafka_controller_port=controller_port)


def test_kafka_names_every_node_and_kafka_n_one(tmp_path: Path) -> None:
    layout = _cluster(tmp_path)
    every = Runner(layout, ["kafka", "postgres"]).services
    assert [service.name for service in every] == ["kafka-1", "kafka-2", "kafka-3", "postgres"]
    assert [service.home for service in every[:3]] == [tmp_path / f"kafka-{n}" for n in (1, 2, 3)]
    assert [s.name for s in Runner(layout, ["kafka-2", "kafka"]).services] == [
        "kafka-2", "kafka-1", "kafka-3"]
    with pytest.raises(ServiceError, match=r"unknown service.*kafka-4"):
        Runner(layout, ["kafka-4"])
    with pytest.raises(ServiceError, match="unknown service"):
        Runner(_cluster(tmp_path, nodes=1), ["kafka-1"])


def test_the_nodes_are_stopped_together(tmp_path: Path) -> None:
    services = Runner(_cluster(tmp_path), ["postgres", "kafka", "elasticsearch"]).services
    batches = _stop_batches(list(reversed(services)))
    assert [[service.name for service in batch] for batch in batches] == [
        ["elasticsearch"], ["kafka-3", "kafka-2", "kafka-1"], ["postgres"]]


@pytest.fixture
def unrelated_process() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_status_and_down_cover_every_node(
    tmp_path: Path, unrelated_process: subprocess.Popen[bytes]
) -> None:
    layout = _cluster(tmp_path)
    runner = Runner(layout, ["kafka"])
    assert [(status.name, status.pid) for status in runner.status()] == [
        ("kafka-1", None), ("kafka-2", None), ("kafka-3", None)]
    for node in (1, 2, 3):
        layout.pid_file(f"kafka-{node}").parent.mkdir(parents=True, exist_ok=True)
        layout.pid_file(f"kafka-{node}").write_text(f"{unrelated_process.pid}\n")
    said: list[str] = []
    assert runner.down(said.append)
    assert sum("stale pid file" in line for line in said) == 3, said
    assert unrelated_process.poll() is None


def test_the_node_count_changes_only_while_kafka_is_stopped(
    tmp_path: Path, unrelated_process: subprocess.Popen[bytes]
) -> None:
    said: list[str] = []
    Runner(_cluster(tmp_path), ["kafka"])._record_kafka_nodes(said.append)
    assert (tmp_path / "kafka-nodes").read_text() == "3\n"
    write_pid_file(tmp_path / "pids/kafka-2.pid", unrelated_process.pid)
    with pytest.raises(ServiceError, match=r"runs here as 3 node\(s\) \(kafka-2\)"):
        Runner(_cluster(tmp_path, nodes=1), ["kafka"])._record_kafka_nodes(said.append)
    assert (tmp_path / "kafka-nodes").read_text() == "3\n"
    Runner(_cluster(tmp_path), ["kafka"])._record_kafka_nodes(said.append)
