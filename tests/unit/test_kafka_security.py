"""Secure Kafka without a broker: the nodes' rendered configs, the SCRAM users' format arguments,
the role files written after start, and each principal's ACLs for a catalogue."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from cqrs.access.kafka import Acl, _binding, grant_kafka, kafka_acls
from cqrs.services import kafka
from cqrs.services.credentials import ROLES, RoleFiles
from cqrs.services.kafka import Kafka, _argument_file_token, redact
from cqrs.services.kafka_config import NodeSecurity, node_properties, scram_arguments
from cqrs.services.layout import Layout
from cqrs.settings import Settings
from pipeline.client.kafka import result_group
from pipeline.processor import ProcessorConfig
from projections.managers.app import NAME as MANAGERS
from projections.runtime.app import projector_app
from tests.support.processor import topic_names
from topics import Catalogue

PREFIX = "p."


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def _secure(tmp_path: Path, nodes: int = 1) -> Layout:
    return Layout(state_dir=tmp_path, cache_dir=tmp_path, secure=True, kafka_nodes=nodes)


def _security(tmp_path: Path) -> NodeSecurity:
    return NodeSecurity(keystore=tmp_path / "ks.pem", truststore=tmp_path / "ca.pem",
                        admin_password="s3cret-admin")


def test_a_secure_node_has_no_plaintext_listener(tmp_path: Path) -> None:
    config = _properties(node_properties(_secure(tmp_path), 1, tmp_path / "data",
                                         _security(tmp_path)))
    assert config["listeners"] == "BROKER://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert config["advertised.listeners"] == "BROKER://127.0.0.1:9092"
    assert config["listener.security.protocol.map"] == "BROKER:SASL_SSL,CONTROLLER:SSL"
    assert "PLAINTEXT" not in "".join(config.values())
    assert config["inter.broker.listener.name"] == "BROKER"
    assert config["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert config["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert config["listener.name.controller.ssl.client.auth"] == "required"


def test_a_secure_node_enforces_acls_and_authenticates_its_peers_as_admin(tmp_path: Path) -> None:
    config = _properties(node_properties(_secure(tmp_path, 3), 2, tmp_path / "data",
                                         _security(tmp_path)))
    assert config["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer")
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["super.users"] == (
        "User:admin;User:kafka-node-1;User:kafka-node-2;User:kafka-node-3")
    assert config["ssl.principal.mapping.rules"] == "RULE:^CN=([^,]+)$/$1/,DEFAULT"
    assert config["listener.name.broker.scram-sha-512.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" '
        'password="s3cret-admin";')
    assert config["ssl.keystore.type"] == config["ssl.truststore.type"] == "PEM"
    assert config["ssl.keystore.location"] == str(tmp_path / "ks.pem")
    assert config["ssl.truststore.location"] == str(tmp_path / "ca.pem")
    assert "ssl.key.password" not in config  # Kafka 4.1 reads the unencrypted PKCS#8 key


def test_a_secure_layout_needs_the_nodes_secrets(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NodeSecurity"):
        node_properties(_secure(tmp_path), 1, tmp_path / "data")
    with pytest.raises(ValueError, match="password"):
        node_properties(_secure(tmp_path), 1, tmp_path / "data",
                        NodeSecurity(tmp_path / "k", tmp_path / "c", 'a"b'))


def test_the_scram_users_go_to_the_format_tool_in_an_argument_file() -> None:
    arguments = scram_arguments({"admin": "pw-1", "client": "pw_2"})
    assert arguments == ["--add-scram", 'SCRAM-SHA-512=[name=admin,password="pw-1"]',
                         "--add-scram", 'SCRAM-SHA-512=[name=client,password="pw_2"]']
    assert _argument_file_token(arguments[1]) == (
        '"SCRAM-SHA-512=[name=admin,password=\\"pw-1\\"]"')
    with pytest.raises(ValueError, match="client"):
        scram_arguments({"client": "a,b"})
    assert redact("failed for pw-1 and pw-10", ["pw-1", "pw-10"]) == "failed for *** and ***"


def test_after_start_each_role_file_gets_its_kafka_user(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    layout = _secure(tmp_path)
    said: list[str] = []
    upserted: list[dict[str, str]] = []
    monkeypatch.setattr(Kafka, "upsert_credentials",
                        lambda _self, passwords, _say: upserted.append(passwords))
    Kafka(layout, None).after_start(said.append)
    assert [sorted(each) for each in upserted] == [sorted(ROLES)]
    roles = RoleFiles(layout.credentials_dir)
    for role in ROLES:
        values = roles.read(role)
        assert values["CQRS_KAFKA_SASL_USERNAME"] == role
        assert values["CQRS_KAFKA_SASL_PASSWORD"] == roles.secret(f"kafka-{role}")
        assert roles.path(role).stat().st_mode & 0o077 == 0
    assert not any(roles.secret(f"kafka-{role}") in line for line in said for role in ROLES)
    admin = Kafka(layout, None).admin_connection()
    assert (admin.security_protocol, admin.sasl_mechanism, admin.sasl_username) == (
        "SASL_SSL", "SCRAM-SHA-512", "admin")
    assert admin.ssl_ca_location == str(layout.ca_file)
    assert Kafka(Layout(state_dir=tmp_path, cache_dir=tmp_path), None).admin_connection() \
        .security_protocol == "PLAINTEXT"


def _rights(acls: list[Acl], principal: str) -> set[tuple[str, str, str, bool]]:
    return {(acl.operation, acl.resource, acl.name, acl.prefixed)
            for acl in acls if acl.principal == principal}


def test_each_principal_gets_what_its_process_needs_and_no_more() -> None:
    acls = kafka_acls(Catalogue(prefix=PREFIX))
    assert _rights(acls, "processor") == {
        ("read", "topic", "p.commands", False), ("read", "topic", "p.events", False),
        ("read", "topic", "p.aggregates", False), ("write", "topic", "p.events", False),
        ("write", "topic", "p.aggregates", False), ("write", "topic", "p.command-results", False),
        ("write", "topic", "p.commands.dlq", False), ("read", "group", "p.processor", False),
        ("describe", "group", "p.processor-restore-unused", False),
        ("describe", "group", "p.processor-replica-unused", False),
        ("write", "transactional-id", "p.processor-", True)}
    for name in ("postgres", "search"):
        assert _rights(acls, f"projector-{name}") == {
            ("read", "topic", "p.events", False),
            ("write", "topic", f"p.projection.{name}.dlq", False),
            ("read", "group", f"p.projector.{name}", False)}
    changelogs = [f"p.managers.{table}.changelog"
                  for table in ("orders", "cancel-on-deactivation", "late-order")]
    assert _rights(acls, "managers") == {
        ("read", "topic", "p.events", False), ("read", "group", "p.managers", False),
        ("read", "topic", "p.managers.facts", False), ("write", "topic", "p.managers.facts", False),
        ("write", "topic", "p.commands", False), ("write", "topic", "p.managers.dlq", False),
        *(("read", "topic", name, False) for name in changelogs),
        *(("write", "topic", name, False) for name in changelogs)}
    assert _rights(acls, "client") == {
        ("write", "topic", "p.commands", False), ("read", "topic", "p.command-results", False),
        ("describe", "group", "p.client-", True)}
    assert _rights(acls, "admin") == set()  # a super user


def test_every_acl_is_under_the_prefix_and_the_names_are_the_components_own() -> None:
    catalogue = Catalogue(prefix=PREFIX)
    acls = kafka_acls(catalogue)
    assert all(acl.name.startswith(PREFIX) for acl in acls)
    assert kafka_acls(catalogue) == acls  # sorted, stable
    processor = ProcessorConfig(kafka={}, topics=topic_names(catalogue), prefix=PREFIX,
                                instance_id="host-1")
    groups = {acl.name for acl in acls if acl.resource == "group"}
    assert processor.consumer_group in groups
    assert {str(processor.reader(purpose)["group.id"])
            for purpose in ("restore", "replica")} <= groups
    assert {projector_app(PREFIX, "postgres"), projector_app(PREFIX, "search"),
            PREFIX + MANAGERS} <= groups
    [transactional] = [acl for acl in acls if acl.resource == "transactional-id"]
    assert processor.transactional_id.startswith(transactional.name)
    [results] = [acl for acl in acls if acl.principal == "client" and acl.resource == "group"]
    assert result_group(PREFIX).startswith(results.name)


def test_an_acl_becomes_an_allow_binding_for_the_scram_user() -> None:
    binding = _binding(Acl("processor", "transactional-id", "p.processor-", "write", True))
    assert binding.restype == ResourceType.TRANSACTIONAL_ID
    assert binding.name == "p.processor-"
    assert binding.resource_pattern_type == ResourcePatternType.PREFIXED
    assert binding.principal == "User:processor"
    assert binding.host == "*"
    assert binding.operation == AclOperation.WRITE
    assert binding.permission_type == AclPermissionType.ALLOW
    literal = _binding(Acl("client", "topic", "p.commands", "write"))
    assert literal.resource_pattern_type == ResourcePatternType.LITERAL


def test_grants_need_the_role_files() -> None:
    with pytest.raises(ValueError, match="secure services"):
        grant_kafka(Settings(), None, print)


def test_a_cluster_id_never_looks_like_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter([uuid.UUID(bytes=b"\xfb" + bytes(15)), uuid.UUID(bytes=bytes(16))])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(drawn))
    assert kafka.new_cluster_id() == "AAAAAAAAAAAAAAAAAAAAAA"


def test_ready_only_reads_the_secrets(tmp_path: Path) -> None:
    """`ready` (and so `cqrs services status`) never makes a secret: without the admin's, the
    node is not ready and nothing is written."""
    layout = _secure(tmp_path)
    assert Kafka(layout, None).ready() is False
    assert not (layout.credentials_dir / "secrets").exists()
    assert Kafka(layout, None).admin_connection().sasl_password is None
