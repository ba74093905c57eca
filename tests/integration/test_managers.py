"""The process managers as a process against the real Kafka and a real `cqrs processor`.

- Customers with open and paid orders, some deactivated, some forgotten; the manager SIGKILLed
  right after its first cancels and restarted: every open order of an inactive customer ends
  cancelled exactly once (one accepted CancelOrder; every record sent again answered
  `duplicate`, under the same deterministic id), paid orders and active customers' untouched.
- The late-order race, produced raw as a processor on another partition would have written it (a
  user deactivated, then an order accepted for them): one `customer.inactive` cancel, with its
  deterministic id, across a restart; a poison record on the events topic goes to the DLQ; and
  `cqrs lag` shows the group and its tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from projections.managers import CANCEL_ON_DEACTIVATION, LATE_ORDER, command_id_for
from tests.support.events import envelope, order_created, produce_raw
from tests.support.events import produce as produce_events
from tests.support.managers import ManagerProcess, manager_commands, wait_until
from tests.support.processor import (
    ROOT,
    ProcessorProcess,
    command,
    produce,
    read_all,
    topics_for,
    wait_for,
)
from topics import (
    Catalogue,
    UserCreated,
    UserDeactivated,
    decode_command,
    decode_event,
    decode_result,
)

PARTITIONS = 3
USERS = 30
ITEMS = [{"sku": "sku-1", "quantity": 1, "unit_price": 500}]


@pytest.fixture
def catalogue(kafka_config: dict[str, str], topic_prefix: str) -> Iterator[Catalogue]:
    with topics_for(kafka_config, topic_prefix, PARTITIONS) as created:
        yield created


def send_and_wait(kafka_config: dict[str, str], catalogue: Catalogue,
                  commands: list[dict[str, object]], answered: int) -> None:
    produce(kafka_config, catalogue.commands.name, commands, PARTITIONS)
    results = wait_for(kafka_config, catalogue.command_results.name, answered, timeout=120)
    assert len(results) >= answered
    statuses = [decode_result(r.value or b"") for r in results]
    assert all(result.status == "accepted" for result in statuses), [
        result for result in statuses if result.status != "accepted"][:3]


def cancelled_orders(kafka_config: dict[str, str], catalogue: Catalogue) -> list[str]:
    return [envelope.stream_id for envelope in (
        decode_event(r.value) for r in read_all(kafka_config, catalogue.events.name)
        if r.value is not None) if envelope.type == "OrderCancelled"]


@pytest.mark.timeout(420)
def test_inactive_customers_open_orders_are_cancelled_exactly_once_across_a_sigkill(
    kafka_config: dict[str, str], catalogue: Catalogue, tmp_path: Path,
) -> None:
    processor = ProcessorProcess(kafka_config, catalogue, tmp_path / "processor.log", "0")
    manager = ManagerProcess(kafka_config, catalogue, tmp_path / "manager.log")
    try:
        users = [f"u{i}" for i in range(USERS)]
        send_and_wait(kafka_config, catalogue, [
            command("CreateUser", u, {"email": f"{u}@example.com", "name": u}) for u in users],
            USERS)
        orders = {u: [f"{u}-{k}" for k in "abc"] for u in users}  # a: paid, b and c: open
        send_and_wait(kafka_config, catalogue, [
            command("CreateOrder", o, {"customer_id": u, "items": ITEMS, "currency": "EUR"})
            for u in users for o in orders[u]], USERS * 4)
        send_and_wait(kafka_config, catalogue, [
            command("PayOrder", orders[u][0], {"payment_ref": f"p-{u}"}) for u in users],
            USERS * 5)
        deactivated, forgotten = users[:10], users[10:20]
        produce(kafka_config, catalogue.commands.name, [
            *(command("DeactivateUser", u, {"reason": "test"}) for u in deactivated),
            *(command("ForgetUser", u, {"reason": "art. 17", "requested_by": "dpo"})
              for u in forgotten)], PARTITIONS)

        wait_until(lambda: manager.cancels_logged() >= 3, 180, "the manager's first cancels",
                   every=0.05)
        manager.kill()  # before its group committed what it just did
        manager = ManagerProcess(kafka_config, catalogue, tmp_path / "manager.log")
        expected = {f"order-{o}" for u in [*deactivated, *forgotten] for o in orders[u][1:]}
        wait_until(lambda: set(cancelled_orders(kafka_config, catalogue)) >= expected, 180,
                   "every open order of an inactive customer cancelled")
        sent = manager_commands(kafka_config, catalogue)
        wait_for(kafka_config, catalogue.command_results.name, USERS * 6 + len(sent),
                 timeout=60)
    finally:
        manager_status = manager.stop()
        assert processor.stop() == 0
    assert manager_status == 0

    sent = manager_commands(kafka_config, catalogue)
    ids_by_order: dict[str, set[str]] = defaultdict(set)
    reasons: dict[str, set[str]] = defaultdict(set)
    for record in sent:
        cancel = decode_command(record.value or b"")
        assert cancel.type == "CancelOrder"
        ids_by_order[f"order-{cancel.aggregate_id}"].add(cancel.command_id)
        reasons[f"order-{cancel.aggregate_id}"].add(cancel.data["reason"])
    assert set(ids_by_order) == expected  # no paid order, no active customer's order
    results: dict[str, list[str]] = defaultdict(list)
    for record in read_all(kafka_config, catalogue.command_results.name):
        result = decode_result(record.value or b"")
        results[result.command_id].append(result.status)
    for order, ids in ids_by_order.items():
        customer = order.removeprefix("order-").split("-")[0]
        reason = "customer.deactivated" if customer in deactivated else "customer.forgotten"
        assert reasons[order] == {reason}
        cause = f"user-{customer}@2"
        assert ids == {command_id_for(CANCEL_ON_DEACTIVATION, order, cause)}
        (command_id,) = ids
        statuses = results[command_id]
        records = sum(decode_command(r.value or b"").command_id == command_id for r in sent)
        assert len(statuses) == records  # one result per record sent
        assert statuses.count("accepted") == 1, (order, statuses)
        assert set(statuses) <= {"accepted", "duplicate"}, (order, statuses)
    cancelled = cancelled_orders(kafka_config, catalogue)
    assert sorted(cancelled) == sorted(expected)  # each once, and nothing else cancelled
    resent = len(sent) - len(expected)
    print(f"{len(expected)} orders cancelled; {resent} CancelOrder records sent again "
          "(answered duplicate)")


def test_an_order_accepted_for_an_inactive_customer_is_cancelled_once_across_a_restart(
    kafka_config: dict[str, str], catalogue: Catalogue, tmp_path: Path,
) -> None:
    # As a processor on another partition would have written them: the customer deactivated,
    # then (its replica not caught up) an order accepted for it.
    produce_events(kafka_config, catalogue.events.name, [
        envelope("user-r1", 1, UserCreated(email="r1@example.com", name="R")),
        envelope("user-r1", 2, UserDeactivated(reason="fraud"))], PARTITIONS, transactional=True)
    produce_raw(kafka_config, catalogue.events.name, b"order-x9@1", b"\x00 not an event", 0)
    manager = ManagerProcess(kafka_config, catalogue, tmp_path / "manager.log")
    try:
        # The order's partition is read independently of the user's: the order is produced once
        # the manager knows the customer is inactive (else it is an open order at the
        # deactivation, cancelled by the other manager).
        wait_until(lambda: manager.totals(LATE_ORDER)["applied"] >= 2, 120,
                   "the customer's deactivation known to the late-order manager")
        produce_events(kafka_config, catalogue.events.name, [
            envelope("order-x1", 1, order_created("x1", "r1"))], PARTITIONS)
        wait_until(lambda: len(manager_commands(kafka_config, catalogue)) >= 1, 120,
                   "the late order's cancel")
        manager.kill()
        manager = ManagerProcess(kafka_config, catalogue, tmp_path / "manager.log")
        produce_events(kafka_config, catalogue.events.name, [
            envelope("order-x2", 1, order_created("x2", "r1"))], PARTITIONS)
        wait_until(lambda: {decode_command(r.value or b"").aggregate_id for r in
                            manager_commands(kafka_config, catalogue)} == {"x1", "x2"}, 120,
                   "the restarted manager's cancel of a second late order")
        wait_until(lambda: len(read_all(kafka_config, catalogue.manager_dlq.name)) >= 1, 60,
                   "the poison record's dead letter")
        lag = lag_json(catalogue, kafka_config)
    finally:
        assert manager.stop() == 0

    commands = [decode_command(r.value or b"") for r in manager_commands(kafka_config, catalogue)]
    ids = {c.aggregate_id: c.command_id for c in commands}
    assert ids == {order: command_id_for(LATE_ORDER, f"order-{order}", f"order-{order}@1")
                   for order in ("x1", "x2")}
    assert {c.data["reason"] for c in commands} == {"customer.inactive"}
    assert {c.issued_by for c in commands} == {"manager.late-order"}
    assert len(commands) >= 2  # x1's may have been sent again after the kill: the same id
    # At least once: read again after the SIGKILL (before any commit), it is dead-lettered again.
    for dead in read_all(kafka_config, catalogue.manager_dlq.name):
        assert dead.headers["dlq.source.topic"] == catalogue.events.name
        assert (dead.headers["dlq.source.partition"], dead.headers["dlq.source.offset"]) == (
            "0", "0")
        assert dead.headers["dlq.error.class"] == "NotJson"

    rows = {row["name"]: row for row in lag}
    assert rows["manager router"]["state"] == "running"
    assert rows["manager router"]["details"]["orders_tracked"] == 2
    assert rows["manager router"]["dlq_depth"] >= 1
    late = rows["manager late-order"]["details"]
    assert late["customers"] == 1
    assert late["open_orders"] == 0
    assert late["cancelling"] == 2


def lag_json(catalogue: Catalogue, kafka_config: dict[str, str]) -> list[dict[str, object]]:
    """`cqrs lag --json -p managers` once the managers' group committed every event."""
    env = {**os.environ, "CQRS_KAFKA_BOOTSTRAP": kafka_config["bootstrap.servers"],
           "CQRS_TOPIC_PREFIX": catalogue.prefix, "CQRS_PARTITIONS": str(PARTITIONS)}

    def run() -> list[dict[str, object]]:
        done = subprocess.run([sys.executable, "-m", "cqrs", "lag", "--json", "-p", "managers"],
                              cwd=ROOT, env=env, capture_output=True, timeout=120, check=True)
        rows: list[dict[str, object]] = json.loads(done.stdout)
        return rows

    found: list[list[dict[str, object]]] = [run()]

    def caught_up() -> bool:
        found[0] = run()
        return all(row["lag"] == 0 for row in found[0] if str(row["name"]).startswith("man"))

    wait_until(caught_up, 60, "the managers' lag to reach 0", every=1)
    return found[0]
