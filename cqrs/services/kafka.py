"""Kafka: a KRaft node (broker and controller), from the kafka_2.13 jars on Maven Central."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from cqrs.services.base import Launch, Say, Service
from cqrs.services.errors import StartFailed
from cqrs.services.fetch import fetch_classpath
from cqrs.services.kafka_config import format_arguments, node_properties
from cqrs.services.layout import (
    KAFKA_ARTIFACT,
    KAFKA_MIN_JAVA,
    KAFKA_VERSION,
    LOG4J_BINDING,
    Layout,
)
from cqrs.services.prereqs import find_java

_LOG4J2 = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka
        level: INFO
      - name: org.apache.kafka
        level: INFO
      - name: state.change.logger
        level: WARN
      - name: kafka.log.LogCleaner
        level: WARN
"""


CLUSTER_ID_RECORD = "kafka-cluster-id"
"""A file in the state directory: the cluster's id, which every node is formatted with."""


class Kafka(Service):
    """One KRaft node: the single node (`kafka`) or node `node` of a cluster (`kafka-<node>`)."""

    name = "kafka"

    def __init__(self, layout: Layout, user: str | None, node: int = 1) -> None:
        if node not in layout.kafka_node_ids:
            raise ValueError(f"no Kafka node {node} in a layout of {layout.kafka_nodes}")
        self.node = node
        self.name = layout.kafka_node_name(node)
        super().__init__(layout, user)

    def _properties(self) -> str:
        return node_properties(self.layout, self.node, self.home / "data")

    def prepare(self, say: Say) -> Launch:
        java_home = find_java(KAFKA_MIN_JAVA, "JAVA_HOME", "Kafka")
        libs = fetch_classpath(
            f"kafka-{KAFKA_VERSION}",
            [KAFKA_ARTIFACT, LOG4J_BINDING],
            self.layout.cache_dir / f"kafka-{KAFKA_VERSION}",
            say,
        )
        config = self.home / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "server.properties").write_text(self._properties())
        (config / "log4j2.yaml").write_text(_LOG4J2)
        java = str(java_home / "bin" / "java")
        base = [java, "-cp", f"{libs}/*", f"-Dlog4j2.configurationFile={config / 'log4j2.yaml'}"]
        self._format_once(base, config / "server.properties", say)
        heap_mb = self.layout.kafka_node_heap_mb
        command = [
            *base[:1],
            f"-Xms{heap_mb}m",
            f"-Xmx{heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            *base[1:],
            "kafka.Kafka",
            str(config / "server.properties"),
        ]
        env = {"PATH": os.environ.get("PATH", ""), "JAVA_HOME": str(java_home)}
        ports = self.layout.kafka_ports(self.node)
        return Launch(command=command, env=env, cwd=self.home, ports=ports)

    def _format_once(self, base: list[str], properties: Path, say: Say) -> None:
        """Format the KRaft storage the first time only (a cluster id is written to it)."""
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_id = self._cluster_id()
        say(f"  formatting KRaft storage (cluster id {cluster_id})")
        result = subprocess.run(
            [*base, "kafka.tools.StorageTool", "format", "-c", str(properties),
             *format_arguments(self.layout, cluster_id)],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise StartFailed(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def _cluster_id(self) -> str:
        """A new id for the single node; a cluster's nodes share one: that of a node already
        formatted, else the one recorded in the state directory by the first node formatted."""
        new = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if self.layout.kafka_nodes == 1:
            return new
        layout = self.layout
        for node in layout.kafka_node_ids:
            meta = layout.service_dir(layout.kafka_node_name(node)) / "data" / "meta.properties"
            with contextlib.suppress(OSError):
                found = re.search(r"^cluster\.id=(\S+)$", meta.read_text(), re.MULTILINE)
                if found:
                    return found.group(1)
        record = layout.state_dir / CLUSTER_ID_RECORD
        if not record.exists():
            record.write_text(new + "\n")
        return record.read_text().strip()

    def ready(self) -> bool:
        """This node answers a metadata request and counts itself among the live brokers
        (a cluster's node is registered with the quorum's controller and unfenced)."""
        address = self.layout.kafka_address(self.node)
        admin = AdminClient({"bootstrap.servers": address, "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=2)
        except Exception:
            return False
        return self.layout.kafka_nodes == 1 or self.node in metadata.brokers

    def describe(self) -> str:
        broker, controller = self.layout.kafka_ports(self.node)
        if self.layout.kafka_nodes == 1:
            return f"kafka {KAFKA_VERSION} on {self.layout.kafka_address(self.node)}"
        return (f"kafka {KAFKA_VERSION} node {self.node} of {self.layout.kafka_nodes} on "
                f"{self.layout.host}:{broker} (controller {controller})")
