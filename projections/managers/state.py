"""A customer as the managers see it: status, and its orders' progress. Pure; JSON in the tables.

`evolve(state, fact)` is the one rule both managers' tables follow. It is idempotent by source
version: a fact whose event (`source@version`) is not newer than what the state already holds of
that stream changes nothing (`is_new` is false), so facts forwarded twice (the router is
at-least-once) or read again after a restart never move a customer back.

An order is `open` (created, not closed), `cancelling` (a manager's `CancelOrder` was sent for it,
or it was created while its customer was inactive: the late-order manager cancels it), or
`closed` (paid, shipped or cancelled: never cancelled by a manager).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True)
class OrderView:
    version: int
    status: str


@dataclass(frozen=True)
class CustomerState:
    status: str = UNKNOWN
    user_version: int = 0
    orders: Mapping[str, OrderView] = field(default_factory=lambda: MappingProxyType({}))

    def open_orders(self) -> list[str]:
        """Order stream ids created and neither closed nor being cancelled, sorted."""
        return sorted(order for order, view in self.orders.items() if view.status == OPEN)

    def with_order(self, order: str, view: OrderView) -> CustomerState:
        return replace(self, orders=MappingProxyType({**self.orders, order: view}))


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
        return replace(state, status=STATUS_OF[fact.kind], user_version=fact.version)
    if fact.kind == ORDER_CREATED:
        # Created while the customer is inactive: the late-order manager cancels it.
        status = CANCELLING if state.status in INACTIVE else OPEN
        return state.with_order(fact.source, OrderView(fact.version, status))
    if fact.kind == ORDER_CLOSED:
        return state.with_order(fact.source, OrderView(fact.version, CLOSED))
    return state


def mark_cancelling(state: CustomerState, orders: list[str]) -> CustomerState:
    """`state` with `orders` marked as being cancelled (a `CancelOrder` was sent for each)."""
    for order in orders:
        view = state.orders.get(order)
        if view is not None and view.status == OPEN:
            state = state.with_order(order, OrderView(view.version, CANCELLING))
    return state


def encode_state(state: CustomerState) -> bytes:
    document = {"status": state.status, "user_version": state.user_version,
                "orders": {order: [view.version, view.status]
                           for order, view in sorted(state.orders.items())}}
    return json.dumps(document, separators=(",", ":")).encode()


def decode_state(raw: bytes | None) -> CustomerState:
    """The state in `raw` (`None`: a customer never seen); raises `InvalidState`."""
    if raw is None:
        return CustomerState()
    try:
        document = json.loads(raw)
        orders = {str(order): OrderView(int(version), str(status))
                  for order, (version, status) in document["orders"].items()}
        return CustomerState(str(document["status"]), int(document["user_version"]),
                             MappingProxyType(orders))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidState(f"not a customer state: {type(error).__name__}: {error}") from None
