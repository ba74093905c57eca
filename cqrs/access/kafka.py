"""Kafka's ACLs for one topic prefix: each role's principal may do what its process needs.

`kafka_acls` is the pure part (which rights for which catalogue); `grant_kafka` creates them as
the admin (a super user, who needs none). Names are LITERAL where the catalogue or a component
fixes them, PREFIXED only where a process names them itself: the processor's transactional ids
(`<prefix>processor-<instance>`, one per process slot) and the command clients' result groups
(`<prefix>client-<random>`). READ and WRITE imply DESCRIBE, which is all the metadata,
partition-count and watermark reads of the processes need. Consumers that read by assignment
alone (the processor's restore and replica readers, the clients' result readers) never join
their group, but librdkafka looks up its coordinator: DESCRIBE on it, no more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from cqrs.config import Config
from cqrs.services.credentials import RoleFiles
from cqrs.settings import Settings
from pipeline.client.kafka import RESULT_GROUP
from pipeline.processor import ProcessorConfig, TopicNames
from projections.managers.app import NAME as MANAGERS
from projections.runtime.app import projector_app
from topics import MANAGER_TABLES, Catalogue

Resource = Literal["topic", "group", "transactional-id"]
Operation = Literal["read", "write", "describe"]

READER_PURPOSES = ("restore", "replica")
"""The processor's group-less readers (`pipeline.processor.bootstrap.kafka_ports`): each one's
group is never joined, but librdkafka looks up its coordinator (DESCRIBE on the group)."""


@dataclass(frozen=True, order=True)
class Acl:
    """ALLOW `operation` on `resource` `name` (a prefix of names if `prefixed`) to the SCRAM
    user `principal`, from any host."""

    principal: str
    resource: Resource
    name: str
    operation: Operation
    prefixed: bool = False


def _topics(principal: str, operation: Operation, names: Iterable[str]) -> list[Acl]:
    return [Acl(principal, "topic", name, operation) for name in names]


def _processor_config(catalogue: Catalogue) -> ProcessorConfig:
    """A processor of `catalogue` (slot ``""``): the source of its group and transactional ids."""
    topics = TopicNames(commands=catalogue.commands.name, events=catalogue.events.name,
                        aggregates=catalogue.aggregates.name,
                        command_results=catalogue.command_results.name,
                        commands_dlq=catalogue.commands_dlq.name)
    return ProcessorConfig(kafka={}, topics=topics, prefix=catalogue.prefix, instance_id="")


def _processor(catalogue: Catalogue) -> list[Acl]:
    role = "processor"
    config = _processor_config(catalogue)
    readers = [Acl(role, "group", str(config.reader(purpose)["group.id"]), "describe")
               for purpose in READER_PURPOSES]
    return [
        # Commands in; a snapshot that does not decode is rebuilt from the stream's events.
        *_topics(role, "read", [catalogue.commands.name, catalogue.events.name,
                                catalogue.aggregates.name]),
        *_topics(role, "write", [catalogue.events.name, catalogue.aggregates.name,
                                 catalogue.command_results.name, catalogue.commands_dlq.name]),
        Acl(role, "group", config.consumer_group, "read"),
        *readers,
        # `<prefix>processor-<instance id>`: one per process slot, named by whoever runs it.
        Acl(role, "transactional-id", config.transactional_id, "write", prefixed=True),
    ]


def _projector(catalogue: Catalogue, projector: str) -> list[Acl]:
    role = f"projector-{projector}"
    return [
        *_topics(role, "read", [catalogue.events.name]),
        *_topics(role, "write", [catalogue.projection_dlq(projector).name]),
        # The app declares no topic and runs no leader topic (`topic_disable_leader`).
        Acl(role, "group", projector_app(catalogue.prefix, projector), "read"),
    ]


def _managers(catalogue: Catalogue) -> list[Acl]:
    role = "managers"
    changelogs = [catalogue.manager_changelog(table).name for table in MANAGER_TABLES]
    return [
        # The tables are restored from their changelogs by the app's own consumer.
        *_topics(role, "read", [catalogue.events.name, catalogue.manager_facts.name,
                                *changelogs]),
        *_topics(role, "write", [catalogue.manager_facts.name, *changelogs,
                                 catalogue.commands.name, catalogue.manager_dlq.name]),
        Acl(role, "group", catalogue.prefix + MANAGERS, "read"),
    ]


def _client(catalogue: Catalogue) -> list[Acl]:
    role = "client"
    return [*_topics(role, "write", [catalogue.commands.name]),
            *_topics(role, "read", [catalogue.command_results.name]),
            # Each result consumer's own group, `<prefix>client-<random>`: looked up, never joined.
            Acl(role, "group", catalogue.prefix + RESULT_GROUP, "describe", prefixed=True)]


def kafka_acls(catalogue: Catalogue) -> list[Acl]:
    """Every role's ACLs on `catalogue`'s resources (the admin, a super user, has none), sorted.
    A projector `<name>` of the catalogue is the principal `projector-<name>`."""
    acls = [*_processor(catalogue), *_client(catalogue), *_managers(catalogue)]
    for projector in catalogue.projectors:
        acls += _projector(catalogue, projector)
    return sorted(set(acls))


def _binding(acl: Acl) -> AclBinding:
    resource = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP,
                "transactional-id": ResourceType.TRANSACTIONAL_ID}[acl.resource]
    pattern = ResourcePatternType.PREFIXED if acl.prefixed else ResourcePatternType.LITERAL
    operation = {"read": AclOperation.READ, "write": AclOperation.WRITE,
                 "describe": AclOperation.DESCRIBE}[acl.operation]
    return AclBinding(resource, acl.name, pattern, f"User:{acl.principal}", "*", operation,
                      AclPermissionType.ALLOW)


class AclRefused(Exception):
    """The brokers refused or failed to create ACLs; the message names them and the cause."""


def grant_kafka(settings: Settings, roles: RoleFiles | None,
                say: Callable[[str], None], timeout: float = 30.0) -> None:
    """Create every role's ACLs on `settings.topic_prefix`'s topics, groups and transactional
    ids, as the admin whose settings these are. Idempotent: an ACL that exists is left as it
    is (none is removed). Raises `AclRefused` naming what failed."""
    if roles is None:
        raise ValueError("no credentials directory: Kafka ACLs are for the secure services "
                         "(`cqrs services up --secure`)")
    config = Config.from_settings(settings)
    acls = kafka_acls(config.catalogue)
    bindings = {_binding(acl): acl for acl in acls}
    admin = AdminClient(config.kafka.client_config())
    futures = admin.create_acls(list(bindings), request_timeout=timeout)
    failed = []
    for binding, future in futures.items():
        acl = bindings[binding]
        try:
            future.result(timeout)
        except Exception as error:  # KafkaException: the broker's error, said once per ACL
            failed.append(f"{describe(acl)}: {error}")
    if failed:
        raise AclRefused("Kafka refused ACLs:\n  " + "\n  ".join(failed))
    principals = sorted({acl.principal for acl in acls})
    say(f"  kafka: {len(acls)} ACLs on prefix {config.prefix!r} for {', '.join(principals)}")


def describe(acl: Acl) -> str:
    """`acl` as one line: `processor: read topic cqrs.commands`."""
    pattern = " (prefix)" if acl.prefixed else ""
    return f"{acl.principal}: {acl.operation} {acl.resource} {acl.name}{pattern}"
