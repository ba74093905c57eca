"""`cqrs lag` for the process managers: the group's lag on the events and facts topics, and what
their tables hold, read from the tables' changelog topics (compacted: the last value per key)."""

from __future__ import annotations

from projections.managers.decide import MANAGERS
from projections.managers.state import CANCELLING, InvalidState, decode_state
from projections.operations.kafka import KafkaOps
from projections.operations.lag import ComponentLag, depth, partition_lags, state_of
from topics import Catalogue


def latest_values(kafka: KafkaOps, topic: str) -> dict[bytes, bytes]:
    """Key → last value of a changelog topic (a tombstone removes the key)."""
    found: dict[bytes, bytes] = {}
    for partition in kafka.partitions(topic):
        for message in kafka.read(topic, partition):
            key, value = message.key(), message.value()
            if key is None:
                continue
            if value is None:
                found.pop(key, None)
            else:
                found[key] = value
    return found


def table_details(kafka: KafkaOps, topic: str) -> dict[str, int]:
    """Customers, open orders and orders being cancelled in one manager's table."""
    details = {"customers": 0, "open_orders": 0, "cancelling": 0, "unreadable": 0}
    for value in latest_values(kafka, topic).values():
        try:
            state = decode_state(value)
        except InvalidState:
            details["unreadable"] += 1
            continue
        details["customers"] += 1
        details["open_orders"] += len(state.open_orders())
        details["cancelling"] += sum(v.status == CANCELLING for v in state.orders.values())
    return details


def manager_lags(kafka: KafkaOps, catalogue: Catalogue) -> list[ComponentLag]:
    """The router against the events topic (orders tracked), then each manager against the facts
    topic (its table's customers and orders). Both managers read the facts topic in one group,
    so their offsets there are the same: a fact is committed once both handled it."""
    group = f"{catalogue.prefix}managers"
    running = state_of(kafka, group)
    dlq = catalogue.manager_dlq.name
    dlq_depth = depth(kafka, dlq)
    events, facts = catalogue.events.name, catalogue.manager_facts.name
    orders = len(latest_values(kafka, catalogue.manager_changelog("orders").name))
    rows = [ComponentLag("manager router", group, running,
                         partition_lags(kafka, events, kafka.committed(group, events)), dlq,
                         dlq_depth, 0, 0, {"orders_tracked": orders})]
    fact_positions = kafka.committed(group, facts)
    for name in MANAGERS:
        rows.append(ComponentLag(
            f"manager {name}", group, running, partition_lags(kafka, facts, fact_positions),
            dlq, dlq_depth, 0, 0,
            table_details(kafka, catalogue.manager_changelog(name).name)))
    return rows
