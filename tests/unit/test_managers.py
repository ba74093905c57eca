"""The process managers without Faust: routing, state, decisions, command ids, every record's end.

Given events (as the processor writes them, plus tombstones and hostile records) through the
router and both managers (`projections.managers.handling` over dict tables and fake sends), then
the `CancelOrder`s sent.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field, replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from projections.managers import (
    CANCEL_ON_DEACTIVATION,
    LATE_ORDER,
    MANAGERS,
    CustomerState,
    Fact,
    command_id_for,
    decide,
    decode_fact,
    decode_state,
    encode_fact,
    encode_state,
    evolve,
)
from projections.managers.commands import OutgoingCommand
from projections.managers.facts import (
    ORDER_CLOSED,
    ORDER_CREATED,
    USER_ACTIVE,
    USER_DEACTIVATED,
    USER_FORGOTTEN,
    InvalidFact,
)
from projections.managers.handling import ManagerStage, RouterStage
from projections.managers.metrics import ManagerMetrics
from projections.runtime.records import SourceRecord
from tests.support.events import T0, as_records, envelope, order_created
from topics import (
    Event,
    OrderCancelled,
    OrderPaid,
    OrderShipped,
    UserCreated,
    UserDeactivated,
    UserEmailChanged,
    UserForgotten,
    UserReactivated,
    decode_command,
    partition_for,
)

PARTITIONS = 3
EVENTS = "t.events"
FACTS = "t.managers.facts"


class FakeDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[SourceRecord, BaseException]] = []

    async def send(self, record: SourceRecord, error: BaseException) -> None:
        self.sent.append((record, error))


@dataclass
class Managers:
    """Router and both managers over dict tables; facts are handed on in the order sent."""

    dead: FakeDeadLetters = field(default_factory=FakeDeadLetters)
    tables: dict[str, dict[bytes, bytes]] = field(
        default_factory=lambda: {name: {} for name in ("orders", *MANAGERS)})
    facts: list[SourceRecord] = field(default_factory=list)
    sent: list[OutgoingCommand] = field(default_factory=list)

    def __post_init__(self) -> None:
        metrics = ManagerMetrics(CollectorRegistry(), "t.")

        async def partitions() -> int:
            return PARTITIONS

        async def forward(fact: Fact, partition: int) -> None:
            self.facts.append(SourceRecord(FACTS, partition, len(self.facts),
                                           fact.customer.encode(), encode_fact(fact)))

        async def send(outgoing: OutgoingCommand) -> None:
            self.sent.append(outgoing)

        self.router = RouterStage(self.tables["orders"], forward, self.dead, partitions, metrics)
        self.managers = [ManagerStage(name, self.tables[name], send, self.dead, partitions,
                                      metrics) for name in MANAGERS]

    def run(self, records: list[SourceRecord]) -> list[str]:
        """Route `records`, then hand every new fact to both managers; the router's outcomes."""
        async def go() -> list[str]:
            start = len(self.facts)
            outcomes = [await self.router.handle(record) for record in records]
            for fact in self.facts[start:]:
                for manager in self.managers:
                    await manager.handle(fact)
            return outcomes
        return asyncio.run(go())

    def replay_facts(self) -> None:
        """Every fact again (a restart before any offset was committed)."""
        async def go() -> None:
            for fact in list(self.facts):
                for manager in self.managers:
                    await manager.handle(fact)
        asyncio.run(go())

    def cancels(self) -> list[tuple[str, str, str]]:
        """(order stream, reason, command id) of every CancelOrder sent."""
        found = []
        for outgoing in self.sent:
            command = decode_command(outgoing.value)
            assert command.type == "CancelOrder"
            assert outgoing.partition == partition_for(outgoing.key.decode(), PARTITIONS)
            found.append((outgoing.key.decode(), command.data["reason"], command.command_id))
        return found


CLOCK = itertools.count()
"""Seconds after T0: every event of a test happens after the ones written before it."""


def at(second: int) -> str:
    return (T0 + timedelta(seconds=second)).isoformat()


def events(*stream_events: tuple[str, int, Event]) -> list[SourceRecord]:
    return as_records([envelope(s, v, e, T0 + timedelta(seconds=next(CLOCK)))
                       for s, v, e in stream_events], EVENTS, PARTITIONS)


def created(user: str) -> tuple[str, int, Event]:
    return (f"user-{user}", 1, UserCreated(email=f"{user}@example.com", name=user))


def order(order_id: str, user: str) -> tuple[str, int, Event]:
    return (f"order-{order_id}", 1, order_created(order_id, user))


def test_deactivation_cancels_open_orders_only() -> None:
    managers = Managers()
    managers.run(events(
        created("u1"), order("o1", "u1"), order("o2", "u1"), order("o3", "u1"),
        ("order-o2", 2, OrderPaid(amount=1000, payment_ref="p")),
        ("order-o3", 2, OrderCancelled(reason="changed mind")),
        created("u2"), order("o9", "u2"),
        ("user-u1", 2, UserDeactivated(reason="fraud"))))
    assert managers.cancels() == [
        ("order-o1", "customer.deactivated",
         command_id_for(CANCEL_ON_DEACTIVATION, "order-o1", "user-u1@2"))]
    command = decode_command(managers.sent[0].value)
    assert command.aggregate_id == "o1"
    assert command.issued_by == "manager.cancel-on-deactivation"
    assert dict(managers.sent[0].headers)["command_id"] == command.command_id.encode()


def test_forgotten_cancels_with_its_own_reason_and_tombstones_are_skipped() -> None:
    managers = Managers()
    records = events(created("u1"), order("o1", "u1"), order("o2", "u1"),
                     ("order-o2", 2, OrderPaid(amount=1000, payment_ref="p")),
                     ("order-o2", 3, OrderShipped(tracking="t")),
                     ("user-u1", 2, UserForgotten(reason="art. 17", requested_by="dpo")))
    tombstone = replace(records[0], value=None, offset=99)
    outcomes = managers.run([*records, tombstone])
    assert outcomes[-1] == "skipped"
    assert managers.cancels() == [
        ("order-o1", "customer.forgotten",
         command_id_for(CANCEL_ON_DEACTIVATION, "order-o1", "user-u1@2"))]


def test_repeated_events_and_facts_send_no_new_command_ids() -> None:
    managers = Managers()
    records = events(created("u1"), order("o1", "u1"), ("user-u1", 2, UserDeactivated()))
    managers.run(records)
    first = managers.cancels()
    managers.run(records)  # the router read them again (restart before its commit)
    managers.replay_facts()  # and the managers read every fact again
    assert managers.cancels() == first
    assert len(first) == 1
    for manager in managers.managers:
        counts = manager.counters.snapshot()
        assert counts["consumed"] == counts["applied"] + counts["skipped"]


def test_state_lost_before_its_write_resends_the_same_id() -> None:
    managers = Managers()
    managers.run(events(created("u1"), order("o1", "u1"), ("user-u1", 2, UserDeactivated())))
    managers.tables[CANCEL_ON_DEACTIVATION].clear()  # crashed after the send, before the write
    managers.replay_facts()
    ids = [command_id for _, _, command_id in managers.cancels()]
    assert len(ids) == 2  # sent again: the processor answers the second `duplicate`
    assert len(set(ids)) == 1


def test_reactivation_then_new_orders_are_left_alone() -> None:
    managers = Managers()
    managers.run(events(
        created("u1"), order("o1", "u1"), ("user-u1", 2, UserDeactivated()),
        ("order-o1", 2, OrderCancelled(reason="customer.deactivated")),
        ("user-u1", 3, UserReactivated()), order("o2", "u1")))
    assert [c[0] for c in managers.cancels()] == ["order-o1"]
    managers.run(events(("user-u1", 4, UserDeactivated())))
    assert managers.cancels()[-1] == (
        "order-o2", "customer.deactivated",
        command_id_for(CANCEL_ON_DEACTIVATION, "order-o2", "user-u1@4"))


def test_late_order_is_cancelled_once_and_not_again_on_forget() -> None:
    managers = Managers()
    managers.run(events(created("u1"), ("user-u1", 2, UserDeactivated()), order("o1", "u1")))
    expected = ("order-o1", "customer.inactive", command_id_for(LATE_ORDER, "order-o1",
                                                                "order-o1@1"))
    assert managers.cancels() == [expected]
    managers.run(events(("user-u1", 3, UserForgotten(reason="r", requested_by="x"))))
    managers.replay_facts()
    assert managers.cancels() == [expected]


def test_an_order_for_a_customer_never_seen_is_not_cancelled_until_deactivation() -> None:
    managers = Managers()
    managers.run(events(order("o1", "u7")))
    assert managers.cancels() == []
    managers.run(events(created("u7"), ("user-u7", 2, UserDeactivated())))
    assert [c[:2] for c in managers.cancels()] == [("order-o1", "customer.deactivated")]


def test_hostile_records_are_dead_lettered_or_skipped_and_never_raise() -> None:
    managers = Managers()
    good = events(created("u1"))[0]
    hostile = [
        replace(good, value=b"\xff not json"),
        replace(good, key=b"user-u2@1"),                         # key of another stream
        replace(good, partition=(good.partition + 1) % PARTITIONS),  # wrong partition
        replace(good, headers=(("type", b"UserDeactivated"),)),  # header disagrees
        replace(good, value=json.dumps({"type": "Nope"}).encode()),
        replace(good, key=None, value=None),                     # tombstone without key
    ]
    outcomes = managers.run(hostile)
    assert outcomes == ["dead_lettered"] * 5 + ["skipped"]
    assert len(managers.dead.sent) == 5
    counts = managers.router.counters.snapshot()
    assert counts["consumed"] == 6 == counts["dead_lettered"] + counts["skipped"]
    unacted = events(("user-u1", 2, UserEmailChanged(email="b@example.com")))
    assert managers.run(unacted) == ["skipped"]


def test_order_events_before_their_creation_and_bad_customer_ids_are_skipped() -> None:
    managers = Managers()
    assert managers.run(events(("order-o1", 2, OrderPaid(amount=1, payment_ref="p")))) == [
        "skipped"]
    assert managers.run(events(order("o2", "not an id!"))) == ["skipped"]


def test_hostile_facts_are_dead_lettered() -> None:
    managers = Managers()
    fact = Fact("user-u1", USER_ACTIVE, "user-u1", 1, "2024-01-01T00:00:00+00:00")
    right = partition_for("user-u1", PARTITIONS)
    hostile = [
        SourceRecord(FACTS, right, 0, b"user-u1", b"{}"),
        SourceRecord(FACTS, right, 1, b"user-u1", None),
        SourceRecord(FACTS, (right + 1) % PARTITIONS, 2, b"user-u1", encode_fact(fact)),
        SourceRecord(FACTS, right, 3, b"k", encode_fact(replace(fact, customer="order-o1"))),
        SourceRecord(FACTS, right, 4, b"k", encode_fact(replace(fact, occurred_at="t"))),
        SourceRecord(FACTS, right, 5, b"k", encode_fact(replace(
            fact, occurred_at="2024-01-01T00:00:00"))),  # no offset
    ]

    async def go() -> list[str]:
        return [await managers.managers[0].handle(record) for record in hostile]

    assert asyncio.run(go()) == ["dead_lettered"] * 6


def test_a_fact_round_trips_and_bad_ones_raise_invalid_fact() -> None:
    fact = Fact("user-u1", ORDER_CREATED, "order-o1", 1, "2024-01-01T00:00:00+00:00", "c-1")
    assert decode_fact(encode_fact(fact)) == fact
    for raw in (b"[]", b'{"customer": 1}', b"x" * 5000,
                encode_fact(replace(fact, kind="other")),
                encode_fact(replace(fact, version=0))):
        try:
            decode_fact(raw)
        except InvalidFact:
            continue
        raise AssertionError(raw)


def test_state_round_trips() -> None:
    state = CustomerState()
    for fact in (Fact("user-u1", USER_ACTIVE, "user-u1", 1, at(0)),
                 Fact("user-u1", ORDER_CREATED, "order-o1", 1, at(1)),
                 Fact("user-u1", ORDER_CLOSED, "order-o1", 2, at(2)),
                 Fact("user-u1", USER_DEACTIVATED, "user-u1", 2, at(3)),
                 Fact("user-u1", ORDER_CREATED, "order-o2", 1, at(4))):
        state = evolve(state, fact)
    assert decode_state(encode_state(state)) == state
    assert state.open_orders() == ["order-o2"]
    assert (state.status_at(at(2)), state.status_at(at(3))) == ("active", "deactivated")


KINDS = st.sampled_from([USER_ACTIVE, USER_DEACTIVATED, USER_FORGOTTEN, ORDER_CREATED,
                         ORDER_CLOSED])


@st.composite
def histories(draw: st.DrawFn) -> list[Fact]:
    """Facts of one customer in stream order (each stream's versions increasing)."""
    versions: dict[str, int] = {}
    facts = []
    for kind in draw(st.lists(KINDS, max_size=25)):
        source = "user-u1" if kind in (USER_ACTIVE, USER_DEACTIVATED, USER_FORGOTTEN) else (
            f"order-o{draw(st.integers(0, 3))}")
        versions[source] = versions.get(source, 0) + 1
        facts.append(Fact("user-u1", kind, source, versions[source], at(len(facts))))
    return facts


@settings(max_examples=200, deadline=None)
@given(histories(), st.data())
def test_duplicated_facts_change_nothing(history: list[Fact], data: st.DataObject) -> None:
    """Any fact repeated right after itself, or the history replayed from any point, gives the
    same final state and no command id that the history alone does not give."""
    for manager in MANAGERS:
        once = CustomerState()
        ids_once: set[str] = set()
        for fact in history:
            decision = decide(manager, once, fact)
            once = decision.state
            ids_once |= {cancel.command_id for cancel in decision.cancels}
        start = data.draw(st.integers(0, len(history)))
        again = CustomerState()
        ids_again: list[str] = []
        for fact in [*history, *history[start:]]:
            decision = decide(manager, again, fact)
            again = decide(manager, decision.state, fact).state  # each one twice as well
            ids_again += [cancel.command_id for cancel in decision.cancels]
        assert again == once
        assert set(ids_again) == ids_once
        assert len(ids_again) == len(set(ids_again))  # never the same order cancelled twice


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[Fact], list[Fact]]:
    """A customer's facts in time order (status changes; orders created, some closed later),
    and one arrival order that keeps each source stream's own order, as the router can forward
    them from different events partitions."""
    history: list[Fact] = []
    versions: dict[str, int] = {}
    for step in draw(st.lists(st.sampled_from(["status", "order", "close"]), max_size=20)):
        if step == "status":
            kind = draw(st.sampled_from([USER_ACTIVE, USER_DEACTIVATED, USER_FORGOTTEN]))
            source = "user-u1"
        elif step == "order":
            kind, source = ORDER_CREATED, f"order-o{len(versions)}"
        else:
            unclosed = [s for s, v in versions.items() if s.startswith("order-") and v == 1]
            if not unclosed:
                continue
            kind, source = ORDER_CLOSED, draw(st.sampled_from(unclosed))
        versions[source] = versions.get(source, 0) + 1
        history.append(Fact("user-u1", kind, source, versions[source], at(len(history))))
    queues = {source: [f for f in history if f.source == source] for source in versions}
    arrived: list[Fact] = []
    while any(queues.values()):
        source = draw(st.sampled_from(sorted(s for s, queue in queues.items() if queue)))
        arrived.append(queues[source].pop(0))
    return history, arrived


def _sent(manager: str, facts: list[Fact]) -> dict[str, set[str]]:
    """Order → the command ids `manager` sends for it, given `facts` in this order."""
    found: dict[str, set[str]] = {}
    state = CustomerState()
    for fact in facts:
        decision = decide(manager, state, fact)
        state = decision.state
        for cancel in decision.cancels:
            found.setdefault(cancel.order, set()).add(cancel.command_id)
    return found


@settings(max_examples=300, deadline=None)
@given(arrivals())
def test_the_arrival_order_does_not_change_what_is_cancelled(
    facts: tuple[list[Fact], list[Fact]],
) -> None:
    """Found in review: a reactivation, or an order routed late, made the managers cancel a
    legitimate order or miss one. Decided by the events' times:

    - cancel-on-deactivation sends, for every order never closed, the same single id whichever
      order the facts arrive in (a user's facts arrive in order, so when a deactivation is
      read, every status change before it is known);
    - late-order sends at least what it sends in time order: it may decide on an order before
      a reactivation that preceded it has arrived, and the processor refuses that cancel while
      the customer is active (`order.customer_active`);
    - no order gets two ids, and the two managers never both cancel one order in time order."""
    history, arrived = facts
    closed = {f.source for f in history if f.kind == ORDER_CLOSED}

    def unclosed(sent: dict[str, set[str]]) -> dict[str, set[str]]:
        return {order: ids for order, ids in sent.items() if order not in closed}

    assert unclosed(_sent(CANCEL_ON_DEACTIVATION, arrived)) == unclosed(
        _sent(CANCEL_ON_DEACTIVATION, history))
    late_in_time, late_arrived = _sent(LATE_ORDER, history), _sent(LATE_ORDER, arrived)
    assert unclosed(late_in_time).items() <= unclosed(late_arrived).items()
    for manager in MANAGERS:
        assert all(len(ids) == 1 for ids in _sent(manager, arrived).values())
    assert not _sent(CANCEL_ON_DEACTIVATION, history).keys() & late_in_time.keys()
