"""A customer as the managers see it: status history, and its orders' progress. Pure; JSON in the
tables.

`evolve(state, fact)` is the one rule both managers' tables follow. It is idempotent by source
version: a fact whose event (`source@version`) is not newer than what the state already holds of
that stream changes nothing (`is_new` is false), so facts forwarded twice (the router is
at-least-once) or read again after a restart never move a customer back.

Facts of one customer come from several events partitions (its user stream, each order stream),
so they reach the managers in any order across streams (in order within one). Decisions therefore
go by the events' own times, not by arrival: the state keeps the customer's last `MAX_CHANGES`
status changes (version, status, time) and each order's creation time, and `status_at(t)` is the
customer's status when an order was created, whichever fact came first.

An order is `open` (created, not closed), `cancelling` (this manager sent a `CancelOrder` for it)
or `closed` (paid, shipped or cancelled: never cancelled by a manager).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Final

from projections.managers.facts import (
    ORDER_CLOSED,
    ORDER_CREATED,
    USER_ACTIVE,
    USER_DEACTIVATED,
    USER_FORGOTTEN,
    USER_KINDS,
    Fact,
)

UNKNOWN: Final = "unknown"
"""No status event of the customer seen yet (its user stream's facts may come later)."""
ACTIVE: Final = "active"
DEACTIVATED: Final = "deactivated"
FORGOTTEN: Final = "forgotten"
INACTIVE: Final = frozenset({DEACTIVATED, FORGOTTEN})
STATUS_OF: Final = {USER_ACTIVE: ACTIVE, USER_DEACTIVATED: DEACTIVATED,
                    USER_FORGOTTEN: FORGOTTEN}

OPEN: Final = "open"
CANCELLING: Final = "cancelling"
CLOSED: Final = "closed"


class InvalidState(ValueError):
    """A table value that is not a customer state."""


MAX_CHANGES: Final = 16
"""Status changes kept per customer: enough to place any order still in flight in time."""


@dataclass(frozen=True)
class OrderView:
    version: int
    status: str
    created_at: str = ""
    """When the order was created (ISO 8601, the event's time): its customer's status then."""


@dataclass(frozen=True)
class Change:
    """The customer's status became `status` at its user stream's `version`, at time `at`."""

    version: int
    status: str
    at: str


def moment(text: str) -> datetime:
    """An event time as the facts carry it (ISO 8601 with its offset)."""
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class CustomerState:
    status: str = UNKNOWN
    user_version: int = 0
    orders: Mapping[str, OrderView] = field(default_factory=lambda: MappingProxyType({}))
    changes: tuple[Change, ...] = ()

    def open_orders(self) -> list[str]:
        """Order stream ids created and neither closed nor being cancelled, sorted."""
        return sorted(order for order, view in self.orders.items() if view.status == OPEN)

    def with_order(self, order: str, view: OrderView) -> CustomerState:
        return replace(self, orders=MappingProxyType({**self.orders, order: view}))

    def status_at(self, at: str) -> str:
        """The customer's status at time `at`, as far as its changes seen so far tell."""
        when = moment(at)
        found = [change for change in self.changes if moment(change.at) <= when]
        return max(found, key=lambda change: change.version).status if found else UNKNOWN

    def inactive_after(self, at: str) -> Change | None:
        """The first change to an inactive status after time `at` (an order open then)."""
        when = moment(at)
        later = [change for change in self.changes
                 if change.status in INACTIVE and moment(change.at) > when]
        return min(later, key=lambda change: change.version) if later else None


def is_new(state: CustomerState, fact: Fact) -> bool:
    """Whether `fact`'s event is newer than what `state` holds of its stream."""
    if fact.kind in USER_KINDS:
        return fact.version > state.user_version
    seen = state.orders.get(fact.source)
    return seen is None or fact.version > seen.version


def evolve(state: CustomerState, fact: Fact) -> CustomerState:
    """`state` after `fact` (unchanged when `fact` is not new)."""
    if not is_new(state, fact):
        return state
    if fact.kind in USER_KINDS:
        change = Change(fact.version, STATUS_OF[fact.kind], fact.occurred_at)
        return replace(state, status=change.status, user_version=fact.version,
                       changes=(*state.changes, change)[-MAX_CHANGES:])
    if fact.kind == ORDER_CREATED:
        return state.with_order(fact.source, OrderView(fact.version, OPEN, fact.occurred_at))
    if fact.kind == ORDER_CLOSED:
        known = state.orders.get(fact.source)
        created_at = known.created_at if known is not None else ""
        return state.with_order(fact.source, OrderView(fact.version, CLOSED, created_at))
    return state


def mark_cancelling(state: CustomerState, orders: list[str]) -> CustomerState:
    """`state` with `orders` marked as being cancelled (a `CancelOrder` was sent for each)."""
    for order in orders:
        view = state.orders.get(order)
        if view is not None and view.status == OPEN:
            state = state.with_order(order, OrderView(view.version, CANCELLING, view.created_at))
    return state


def encode_state(state: CustomerState) -> bytes:
    document = {"status": state.status, "user_version": state.user_version,
                "orders": {order: [view.version, view.status, view.created_at]
                           for order, view in sorted(state.orders.items())},
                "changes": [[change.version, change.status, change.at]
                            for change in state.changes]}
    return json.dumps(document, separators=(",", ":")).encode()


def decode_state(raw: bytes | None) -> CustomerState:
    """The state in `raw` (`None`: a customer never seen); raises `InvalidState`."""
    if raw is None:
        return CustomerState()
    try:
        document = json.loads(raw)
        orders = {str(order): OrderView(int(view[0]), str(view[1]),
                                        str(view[2]) if len(view) > 2 else "")
                  for order, view in document["orders"].items()}
        changes = tuple(Change(int(version), str(status), str(at))
                        for version, status, at in document.get("changes", []))
        for change in changes:
            moment(change.at)
        return CustomerState(str(document["status"]), int(document["user_version"]),
                             MappingProxyType(orders), changes)
    except Exception as error:  # whatever the value holds: a table's record, never a crash
        raise InvalidState(f"not a customer state: {type(error).__name__}: {error}") from None
