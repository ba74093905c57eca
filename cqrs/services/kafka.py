"""Kafka: a KRaft node (broker and controller), from the kafka_2.13 jars on Maven Central.

Secure (`Layout.secure`): SASL_SSL with SCRAM-SHA-512 for clients and brokers, SSL with client
certificates for the quorum, ACLs enforced (`cqrs.services.kafka_config`). Every role's SCRAM
user is written when the storage is formatted, with its password from the role files
(`RoleFiles.secret("kafka-<role>")`). Each secure `up` then, as the admin, upserts every role's
credential from its secret file (`alter_user_scram_credentials`) and waits until each password
is accepted: a secret file edited (or removed, hence new) rotates the role's password on the
running node, and each role's file gets its user and password. The admin's password is also the
brokers' own among themselves (`server.properties`): it is upserted too, and the password the
node last accepted is kept (`ADMIN_APPLIED`) so that the admin still gets in meanwhile; a node
started before the change must be restarted to use it. Rights come later, per topic prefix
(`cqrs.access.kafka.grant_kafka`).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ClusterMetadata,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

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


ADMIN_APPLIED = "kafka-admin.applied"
"""Beside the secrets (`<credentials>/secrets/`): the admin's password as the cluster last
accepted it (at format, or upserted by `up`), which the admin connects with until its upsert."""
SCRAM_ITERATIONS = 8192
"""Of a credential `up` upserts (Kafka's minimum for SCRAM-SHA-512 is 4096)."""
UPSERT_TIMEOUT_S = 30.0
"""How long an upserted password may take to be accepted (the brokers apply it as metadata)."""

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
        """Each role's SCRAM password (generated once, kept in the role files' directory; `up`
        only: it makes a missing one)."""
        roles = RoleFiles(self.layout.credentials_dir)
        return {role: roles.secret(f"kafka-{role}") for role in ROLES}

    def _secret_path(self, name: str) -> Path:
        return self.layout.credentials_dir / "secrets" / name

    def _read_secret(self, name: str) -> str | None:
        """The secret kept in file `name`, read only (never made); None if missing or empty."""
        try:
            found = self._secret_path(name).read_text().strip()
        except OSError:
            return None
        return found or None

    def _admin_passwords(self) -> list[str]:
        """The admin's passwords to try, read only: as the cluster last accepted it, then its
        secret file's (once each; none if neither is there)."""
        found = (self._read_secret(ADMIN_APPLIED), self._read_secret(f"kafka-{ADMIN_USER}"))
        return list(dict.fromkeys(each for each in found if each is not None))

    def _admin_in(self) -> tuple[str | None, ClusterMetadata | None]:
        """The admin's password this node accepts and its metadata (plaintext: no password);
        (None, None) if it accepts none of them, or does not answer."""
        for password in self._admin_passwords() if self.layout.secure else [None]:
            metadata = _metadata(self.connection(ADMIN_USER, password), 2)
            if metadata is not None:
                return password, metadata
        return None, None

    def _record_admin_applied(self, password: str) -> None:
        write_secret_file(self._secret_path(ADMIN_APPLIED), password + "\n")

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
        if self.layout.secure:
            self._record_admin_applied(passwords[ADMIN_USER])

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

    def connection(self, user: str, password: str | None) -> KafkaConnection:
        """This node as `user` reaches it with `password` (secure: SASL_SSL, the local CA)."""
        address = self.layout.kafka_address(self.node)
        if not self.layout.secure:
            return KafkaConnection(bootstrap=address)
        return KafkaConnection(
            bootstrap=address, security_protocol="SASL_SSL", sasl_mechanism=SCRAM_MECHANISM,
            sasl_username=user, sasl_password=password, ssl_ca_location=str(self.layout.ca_file))

    def admin_connection(self) -> KafkaConnection:
        """This node as the admin reaches it (secure: SASL_SSL as `admin` with the password the
        cluster last accepted, else the secret file's; the local CA). Reads the secrets, never
        makes one."""
        return self.connection(ADMIN_USER, next(iter(self._admin_passwords()), None))

    def ready(self) -> bool:
        """This node answers a metadata request and counts itself among the live brokers
        (a cluster's node is registered with the quorum's controller and unfenced). Secure,
        not ready while the admin has no password here that the node accepts."""
        _, metadata = self._admin_in()
        if metadata is None:
            return False
        return self.layout.kafka_nodes == 1 or self.node in metadata.brokers

    def after_start(self, say: Say) -> None:
        """Secure: every role's SCRAM credential upserted from its secret file (as the admin),
        then each role's file gets its Kafka user and password (the protocol, mechanism and CA
        are everyone's: `cqrs services env`). Idempotent: editing `secrets/kafka-<role>` and
        running `up` again rotates that role's password on the running node."""
        if not self.layout.secure:
            return
        roles = RoleFiles(self.layout.credentials_dir)
        passwords = self._passwords()
        self.upsert_credentials(passwords, say)
        for role in ROLES:
            roles.set(role, {"CQRS_KAFKA_SASL_USERNAME": role,
                             "CQRS_KAFKA_SASL_PASSWORD": passwords[role]})
        if self.node == self.layout.kafka_node_ids[-1]:
            say(f"{self.name}: SCRAM users {', '.join(ROLES)} in {roles.directory}")

    def upsert_credentials(self, passwords: dict[str, str], say: Say) -> None:
        """As the admin, each role's SCRAM-SHA-512 credential set to `passwords[role]`, then
        wait until every one is accepted. The admin's last: it connects with its old password
        until then, and a node running since before the change still uses the old one among
        the brokers until it restarts (said)."""
        applied, _ = self._admin_in()
        if applied is None:
            raise StartFailed(f"{self.name}: the {ADMIN_USER} user is refused with both its "
                              f"last password and that of its secret file")
        admin_password = passwords[ADMIN_USER]
        users: list[str] = [role for role in ROLES if role != ADMIN_USER]
        if applied != admin_password:
            users.append(ADMIN_USER)
        connection = self.connection(ADMIN_USER, applied)
        admin = AdminClient({**connection.client_config(), "log_level": 0})
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(user, info, passwords[user].encode()) for user in users]
        try:
            for future in admin.alter_user_scram_credentials(upserts).values():
                future.result(timeout=UPSERT_TIMEOUT_S)
        except Exception as error:
            raise StartFailed(f"{self.name}: upserting the SCRAM credentials as {ADMIN_USER} "
                              f"failed: {redact(str(error), passwords.values())}") from None
        for user in users:
            self._wait_accepted(user, passwords[user])
        self._record_admin_applied(admin_password)
        if self._broker_password() not in (None, admin_password):
            say(f"{self.name}: the {ADMIN_USER} password changed and is now in force for "
                f"clients; this node still uses the old one among the brokers: restart it "
                f"(cqrs services down kafka, then cqrs services up --secure kafka)")

    def _wait_accepted(self, user: str, password: str) -> None:
        deadline = time.monotonic() + UPSERT_TIMEOUT_S
        while _metadata(self.connection(user, password), 2) is None:
            if time.monotonic() > deadline:
                raise StartFailed(f"{self.name}: the SCRAM credential of {user} was upserted "
                                  f"but not accepted within {UPSERT_TIMEOUT_S:.0f}s "
                                  f"(see {self.layout.log_file(self.name)})")
            time.sleep(0.2)

    def _broker_password(self) -> str | None:
        """The admin's password in this node's `server.properties` (that of the running node:
        the file is rewritten only when the node is started); None if not found."""
        try:
            text = (self.home / "config" / "server.properties").read_text()
        except OSError:
            return None
        found = re.search(r'sasl\.jaas\.config=.*password="([^"]*)"', text)
        return found.group(1) if found else None

    def describe(self) -> str:
        broker, controller = self.layout.kafka_ports(self.node)
        if self.layout.kafka_nodes == 1:
            return f"kafka {KAFKA_VERSION} on {self.layout.kafka_address(self.node)}"
        return (f"kafka {KAFKA_VERSION} node {self.node} of {self.layout.kafka_nodes} on "
                f"{self.layout.host}:{broker} (controller {controller})")


def _metadata(connection: KafkaConnection, timeout: float) -> ClusterMetadata | None:
    """The cluster's metadata through `connection`; None if it cannot be had (refused,
    unreachable) within `timeout` seconds."""
    admin = AdminClient({**connection.client_config(), "log_level": 0})
    try:
        return admin.list_topics(timeout=timeout)
    except Exception:
        return None


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
