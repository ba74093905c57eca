"""A Kafka node's `server.properties`, rendered from the layout: one node, or one of a cluster.

Every node of a cluster is a combined broker and controller (`process.roles=broker,controller`)
in a static quorum (`controller.quorum.voters`, the same line on every node): docs/services.md
says why. The internal topics get the layout's replication, so transactions and group offsets
survive a node's loss as the catalogue's topics do.
"""

from __future__ import annotations

from pathlib import Path

from cqrs.services.layout import Layout

_COMMON = [
    "controller.listener.names=CONTROLLER",
    "inter.broker.listener.name=PLAINTEXT",
    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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


def node_properties(layout: Layout, node: int, data_dir: Path) -> str:
    """`server.properties` of node `node` (1-based) of `layout`, its log in `data_dir`."""
    host = layout.host
    broker, controller = layout.kafka_ports(node)
    lines = [
        "process.roles=broker,controller",
        f"node.id={node}",
        _quorum(layout),
        f"listeners=PLAINTEXT://{host}:{broker},CONTROLLER://{host}:{controller}",
        f"advertised.listeners=PLAINTEXT://{host}:{broker}",
        f"log.dirs={data_dir}",
        *_COMMON,
        *_replication(layout),
        "",
    ]
    return "\n".join(lines)


def format_arguments(layout: Layout, cluster_id: str) -> list[str]:
    """`StorageTool format`'s arguments after the config: a single node formats itself as a
    standalone dynamic quorum; a cluster's nodes take the static voters from their config."""
    standalone = ["--standalone"] if layout.kafka_nodes == 1 else []
    return [*standalone, "-t", cluster_id]
