"""A Kafka node's `server.properties`, rendered from the layout: one node, or one of a cluster.

Every node of a cluster is a combined broker and controller (`process.roles=broker,controller`)
in a static quorum (`controller.quorum.voters`, the same line on every node): docs/services.md
says why. The internal topics get the layout's replication, so transactions and group offsets
survive a node's loss as the catalogue's topics do.

Secure nodes (`Layout.secure`, `NodeSecurity`) have no plaintext listener: clients and the
brokers among themselves use `BROKER` (SASL_SSL, SCRAM-SHA-512; a broker authenticates as
`admin`), the quorum uses `CONTROLLER` (SSL, client certificates required; a node's principal is
its certificate's common name, `kafka-node-<n>`). The StandardAuthorizer denies what no ACL
allows; `admin` and the nodes are super users. The file then holds secrets (the admin's JAAS
line): `Kafka.prepare` writes it 0600.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cqrs.services.layout import Layout

SCRAM_MECHANISM = "SCRAM-SHA-512"
ADMIN_USER = "admin"
"""The SCRAM user the brokers authenticate to each other as, and the operators' super user."""
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
CN_PRINCIPAL_RULE = "RULE:^CN=([^,]+)$/$1/,DEFAULT"
"""A client certificate's principal is its common name alone (`User:kafka-node-1`)."""

_PLAINTEXT_LISTENERS = [
    "controller.listener.names=CONTROLLER",
    "inter.broker.listener.name=PLAINTEXT",
    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
]
_SECURE_LISTENERS = [
    "controller.listener.names=CONTROLLER",
    "inter.broker.listener.name=BROKER",
    "listener.security.protocol.map=BROKER:SASL_SSL,CONTROLLER:SSL",
    f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
    f"sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISM}",
    "listener.name.controller.ssl.client.auth=required",
    f"ssl.principal.mapping.rules={CN_PRINCIPAL_RULE}",
    f"authorizer.class.name={AUTHORIZER}",
    "allow.everyone.if.no.acl.found=false",
]
_COMMON = [
    "num.partitions=6",
    "group.initial.rebalance.delay.ms=0",
    # Topics come from `cqrs topics apply`, never from a typo in a client.
    "auto.create.topics.enable=false",
    "log.cleaner.min.compaction.lag.ms=0",
]


def _replication(layout: Layout) -> list[str]:
    """The brokers' defaults and internal topics (`__consumer_offsets`, `__transaction_state`,
    `__share_group_state`): replicated like the catalogue's topics, so a transaction's outcome
    and a group's offsets are not lost with one node either."""
    factor, min_isr = layout.replication_factor, layout.min_insync_replicas
    return [
        f"default.replication.factor={factor}",
        f"min.insync.replicas={min_isr}",
        f"offsets.topic.replication.factor={factor}",
        f"transaction.state.log.replication.factor={factor}",
        f"transaction.state.log.min.isr={min_isr}",
        f"share.coordinator.state.topic.replication.factor={factor}",
        f"share.coordinator.state.topic.min.isr={min_isr}",
        # Never elect a replica that missed acknowledged writes (Kafka's default, stated).
        "unclean.leader.election.enable=false",
    ]


def _quorum(layout: Layout) -> str:
    if layout.kafka_nodes == 1:
        # A dynamic quorum of one (formatted `--standalone`), as before clusters existed.
        return f"controller.quorum.bootstrap.servers={layout.host}:{layout.kafka_controller_port}"
    voters = ",".join(f"{node}@{layout.host}:{layout.kafka_ports(node)[1]}"
                      for node in layout.kafka_node_ids)
    return f"controller.quorum.voters={voters}"


def node_principal(node: int) -> str:
    """Node `node`'s certificate common name, hence its principal on the controller listener."""
    return f"kafka-node-{node}"


@dataclass(frozen=True)
class NodeSecurity:
    """A secure node's secrets: its PEM key store (the PKCS#8 key, unencrypted, which Kafka
    4.1 reads when no `ssl.key.password` is set; then the certificate chain), the CA (PEM) and
    the admin's SCRAM password."""

    keystore: Path
    truststore: Path
    admin_password: str = field(repr=False)


def _security(layout: Layout, security: NodeSecurity) -> list[str]:
    if not security.admin_password or any(c in security.admin_password for c in '"\\\n'):
        raise ValueError("the admin's password must be non-empty, without quotes or backslashes")
    super_users = [ADMIN_USER, *(node_principal(node) for node in layout.kafka_node_ids)]
    jaas = (f'{SCRAM_LOGIN} required username="{ADMIN_USER}" '
            f'password="{security.admin_password}";')
    return [
        *_SECURE_LISTENERS,
        f"super.users={';'.join(f'User:{user}' for user in super_users)}",
        f"listener.name.broker.{SCRAM_MECHANISM.lower()}.sasl.jaas.config={jaas}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={security.keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={security.truststore}",
    ]


def node_properties(layout: Layout, node: int, data_dir: Path,
                    security: NodeSecurity | None = None) -> str:
    """`server.properties` of node `node` (1-based) of `layout`, its log in `data_dir`; secure
    (and then secret) with `security`, which a secure layout requires."""
    host = layout.host
    broker, controller = layout.kafka_ports(node)
    if layout.secure and security is None:
        raise ValueError("a secure Kafka node needs its NodeSecurity")
    client = "BROKER" if security is not None else "PLAINTEXT"
    lines = [
        "process.roles=broker,controller",
        f"node.id={node}",
        _quorum(layout),
        f"listeners={client}://{host}:{broker},CONTROLLER://{host}:{controller}",
        f"advertised.listeners={client}://{host}:{broker}",
        f"log.dirs={data_dir}",
        *(_security(layout, security) if security is not None else _PLAINTEXT_LISTENERS),
        *_COMMON,
        *_replication(layout),
        "",
    ]
    return "\n".join(lines)


def scram_arguments(passwords: dict[str, str]) -> list[str]:
    """`StorageTool format`'s arguments adding a SCRAM-SHA-512 credential per user (they are
    secret: `Kafka` hands them to the tool in a private argument file, never on its command
    line)."""
    arguments = []
    for user, password in passwords.items():
        if not password or any(c in password for c in '"\\,[]\n '):
            raise ValueError(f"the password of {user} may not be used in a SCRAM argument")
        arguments += ["--add-scram", f'{SCRAM_MECHANISM}=[name={user},password="{password}"]']
    return arguments


def format_arguments(layout: Layout, cluster_id: str) -> list[str]:
    """`StorageTool format`'s arguments after the config: a single node formats itself as a
    standalone dynamic quorum; a cluster's nodes take the static voters from their config."""
    standalone = ["--standalone"] if layout.kafka_nodes == 1 else []
    return [*standalone, "-t", cluster_id]
