"""Kafka: one KRaft node (broker and controller), from the kafka_2.13 jars on Maven Central."""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from cqrs.services.base import Launch, Say, Service
from cqrs.services.errors import StartFailed
from cqrs.services.fetch import fetch_classpath
from cqrs.services.layout import KAFKA_ARTIFACT, KAFKA_MIN_JAVA, KAFKA_VERSION, LOG4J_BINDING
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


class Kafka(Service):
    name = "kafka"

    def _properties(self) -> str:
        layout = self.layout
        host, port, controller = layout.host, layout.kafka_port, layout.kafka_controller_port
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers={host}:{controller}",
                f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
                f"advertised.listeners=PLAINTEXT://{host}:{port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={self.home / 'data'}",
                "num.partitions=6",
                # One node: internal topics cannot be replicated.
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                # Topics come from `cqrs topics apply`, never from a typo in a client.
                "auto.create.topics.enable=false",
                "log.cleaner.min.compaction.lag.ms=0",
                "",
            ]
        )

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
        heap = f"-Xmx{self.layout.heap_mb}m"
        command = [
            *base[:1],
            f"-Xms{self.layout.heap_mb}m",
            heap,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            *base[1:],
            "kafka.Kafka",
            str(config / "server.properties"),
        ]
        env = {"PATH": os.environ.get("PATH", ""), "JAVA_HOME": str(java_home)}
        ports = (self.layout.kafka_port, self.layout.kafka_controller_port)
        return Launch(command=command, env=env, cwd=self.home, ports=ports)

    def _format_once(self, base: list[str], properties: Path, say: Say) -> None:
        """Format the KRaft storage the first time only (a cluster id is written to it)."""
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        say(f"  formatting KRaft storage (cluster id {cluster_id})")
        result = subprocess.run(
            [*base, "kafka.tools.StorageTool", "format", "--standalone",
             "-t", cluster_id, "-c", str(properties)],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise StartFailed(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def ready(self) -> bool:
        admin = AdminClient({"bootstrap.servers": self.layout.kafka_bootstrap, "log_level": 0})
        try:
            admin.list_topics(timeout=2)
        except Exception:
            return False
        return True

    def describe(self) -> str:
        return f"kafka {KAFKA_VERSION} on {self.layout.kafka_bootstrap}"
