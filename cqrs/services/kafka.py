"""Kafka: a KRaft node (broker and controller), from the kafka_2.13 jars on Maven Central.

Secure (`Layout.secure`): SASL_SSL with SCRAM-SHA-512 for clients and brokers, SSL with client
certificates for the quorum, ACLs enforced (`cqrs.services.kafka_config`). Every role's SCRAM
user is written when the storage is formatted, with its password from the role files
(`RoleFiles.secret("kafka-<role>")`); once the node is up, each role's file gets its user and
password. Rights come later, per topic prefix (`cqrs.access.kafka.grant_kafka`).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka.admin import AdminClient

from cqrs.services.base import Launch, Say, Service
from cqrs.services.credentials import ROLES, RoleFiles, write_secret_file
from cqrs.services.errors import StartFailed
from cqrs.services.fetch import fetch_classpath
from cqrs.services.kafka_config import (
    ADMIN_USER,
    SCRAM_MECHANISM,
    NodeSecurity,
    format_arguments,
    node_principal,
    node_properties,
    scram_arguments,
)
from cqrs.services.layout import (
    KAFKA_ARTIFACT,
    KAFKA_MIN_JAVA,
    KAFKA_VERSION,
    LOG4J_BINDING,
    Layout,
)
from cqrs.services.prereqs import find_java
from cqrs.services.tls import LocalCA
from topics import KafkaConnection

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


def new_cluster_id() -> str:
    """A random cluster id as Kafka writes them (URL-safe base64 of 16 bytes), never starting
    with `-`: the storage tool would take such an id for an option (as Kafka's own ids avoid)."""
    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not found.startswith("-"):
            return found


class Kafka(Service):
    """One KRaft node: the single node (`kafka`) or node `node` of a cluster (`kafka-<node>`)."""

    name = "kafka"

    def __init__(self, layout: Layout, user: str | None, node: int = 1) -> None:
        if node not in layout.kafka_node_ids:
            raise ValueError(f"no Kafka node {node} in a layout of {layout.kafka_nodes}")
        self.node = node
        self.name = layout.kafka_node_name(node)
        super().__init__(layout, user)

    def _passwords(self) -> dict[str, str]:
        """Each role's SCRAM password (generated once, kept in the role files' directory)."""
        roles = RoleFiles(self.layout.credentials_dir)
        return {role: roles.secret(f"kafka-{role}") for role in ROLES}

    def _security(self, config: Path) -> NodeSecurity | None:
        """A secure node's key store (its key, then its certificate chain: one PEM file, 0600)
        and the admin's password."""
        if not self.layout.secure:
            return None
        ca = LocalCA(self.layout.tls_dir)
        hosts = tuple(dict.fromkeys((self.layout.host, "127.0.0.1", "localhost")))
        issued = ca.issue(node_principal(self.node), hosts=hosts, client=True)
        keystore = config / "node-keystore.pem"
        write_secret_file(keystore, issued.key.read_bytes() + issued.cert.read_bytes())
        return NodeSecurity(keystore=keystore, truststore=ca.cert,
                            admin_password=self._passwords()[ADMIN_USER])

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
        security = self._security(config)
        properties = node_properties(self.layout, self.node, self.home / "data", security)
        # Secure, it holds the admin's password and the key store's: readable by Kafka alone.
        write_secret_file(config / "server.properties", properties,
                          0o600 if security is not None else 0o644)
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
        arguments = ["kafka.tools.StorageTool", "format", "-c", str(properties),
                     *format_arguments(self.layout, cluster_id)]
        passwords = self._passwords() if self.layout.secure else {}
        # The SCRAM users' passwords go in a private argument file that the java launcher
        # expands (`java @file`), never on a command line other users could read in /proc.
        argument_file = properties.parent / "format.args"
        write_secret_file(argument_file, "\n".join(
            _argument_file_token(arg) for arg in [*arguments, *scram_arguments(passwords)]))
        try:
            result = subprocess.run([*base, f"@{argument_file}"], capture_output=True,
                                    text=True, check=False)
        finally:
            argument_file.unlink(missing_ok=True)
        if result.returncode != 0:
            output = redact(f"{result.stdout}{result.stderr}", passwords.values())
            raise StartFailed(f"formatting Kafka storage failed:\n{output}")

    def _cluster_id(self) -> str:
        """A new id for the single node; a cluster's nodes share one: that of a node already
        formatted, else the one recorded in the state directory by the first node formatted."""
        new = new_cluster_id()
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

    def admin_connection(self) -> KafkaConnection:
        """This node as the admin reaches it (secure: SASL_SSL as `admin`, the local CA)."""
        address = self.layout.kafka_address(self.node)
        if not self.layout.secure:
            return KafkaConnection(bootstrap=address)
        return KafkaConnection(
            bootstrap=address, security_protocol="SASL_SSL", sasl_mechanism=SCRAM_MECHANISM,
            sasl_username=ADMIN_USER,
            sasl_password=RoleFiles(self.layout.credentials_dir).secret(f"kafka-{ADMIN_USER}"),
            ssl_ca_location=str(self.layout.ca_file))

    def ready(self) -> bool:
        """This node answers a metadata request and counts itself among the live brokers
        (a cluster's node is registered with the quorum's controller and unfenced)."""
        admin = AdminClient({**self.admin_connection().client_config(), "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=2)
        except Exception:
            return False
        return self.layout.kafka_nodes == 1 or self.node in metadata.brokers

    def after_start(self, say: Say) -> None:
        """Secure: each role's file gets its Kafka user and password (the protocol, mechanism
        and CA are everyone's: `cqrs services env`)."""
        if not self.layout.secure:
            return
        roles = RoleFiles(self.layout.credentials_dir)
        passwords = self._passwords()
        for role in ROLES:
            roles.set(role, {"CQRS_KAFKA_SASL_USERNAME": role,
                             "CQRS_KAFKA_SASL_PASSWORD": passwords[role]})
        if self.node == self.layout.kafka_node_ids[-1]:
            say(f"{self.name}: SCRAM users {', '.join(ROLES)} in {roles.directory}")

    def describe(self) -> str:
        broker, controller = self.layout.kafka_ports(self.node)
        if self.layout.kafka_nodes == 1:
            return f"kafka {KAFKA_VERSION} on {self.layout.kafka_address(self.node)}"
        return (f"kafka {KAFKA_VERSION} node {self.node} of {self.layout.kafka_nodes} on "
                f"{self.layout.host}:{broker} (controller {controller})")


def _argument_file_token(argument: str) -> str:
    """`argument` as one token of a java launcher argument file (quoted, `\\` and `"`
    escaped)."""
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def redact(text: str, hidden: Iterable[str]) -> str:
    """`text` with every secret of `hidden` replaced by `***` (the longest first)."""
    for secret in sorted((secret for secret in hidden if secret), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
