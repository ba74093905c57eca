"""The two process managers as pure deciders: (state, fact) → new state + `CancelOrder`s to send.

- `cancel-on-deactivation` (`CANCEL_ON_DEACTIVATION`): a customer deactivated or forgotten →
  cancel each of its open orders (reason `customer.deactivated` / `customer.forgotten`).
- `late-order` (`LATE_ORDER`): an order created for a customer already deactivated or forgotten
  (the processor checked the customer against a replica that had not caught up) → cancel it
  (reason `customer.inactive`).

Command ids are deterministic: uuid5 over the manager, the order's stream id and the cause (the
key of the event that caused the cancel, `<stream_id>@<version>`). Deciding the same fact again,
after a crash or from a fact forwarded twice, gives the same ids, which the processor answers
`duplicate` without new events: a restart never compensates twice. Paid, shipped and cancelled
orders are never cancelled; an order is cancelled at most once by the managers (it is marked
`cancelling` once a command was sent for it, and an order created while its customer is inactive
is marked so for the late-order manager in the state both follow).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from projections.managers.facts import ORDER_CREATED, USER_DEACTIVATED, USER_FORGOTTEN, Fact
from projections.managers.state import (
    INACTIVE,
    CustomerState,
    evolve,
    is_new,
    mark_cancelling,
)

CANCEL_ON_DEACTIVATION: Final = "cancel-on-deactivation"
LATE_ORDER: Final = "late-order"
MANAGERS: Final = (CANCEL_ON_DEACTIVATION, LATE_ORDER)

REASONS: Final = {USER_DEACTIVATED: "customer.deactivated", USER_FORGOTTEN: "customer.forgotten"}
INACTIVE_REASON: Final = "customer.inactive"

NAMESPACE: Final = uuid.UUID("6f1c2a52-8d0e-4c7b-9a35-0f3f6a1d2b7e")
"""The managers' uuid5 namespace (fixed: changing it would change every command id)."""


def command_id_for(manager: str, order: str, cause: str) -> str:
    """The id of the `CancelOrder` `manager` sends for `order` because of event `cause`."""
    return str(uuid.uuid5(NAMESPACE, f"{manager}\n{order}\n{cause}"))


@dataclass(frozen=True)
class Cancel:
    """Send `CancelOrder(reason)` to `order` (a stream id) with id `command_id`."""

    manager: str
    order: str
    reason: str
    cause: str
    command_id: str


@dataclass(frozen=True)
class Decision:
    state: CustomerState
    cancels: tuple[Cancel, ...]
    new: bool
    """False when the fact was already applied (a repeat): nothing changes, nothing is sent."""


def _cancel(manager: str, order: str, reason: str, fact: Fact) -> Cancel:
    return Cancel(manager, order, reason, fact.cause,
                  command_id_for(manager, order, fact.cause))


def cancel_on_deactivation(state: CustomerState, fact: Fact) -> list[Cancel]:
    """Open orders of a customer whose deactivation or erasure is `fact` (`state`: before it)."""
    reason = REASONS.get(fact.kind)
    if reason is None:
        return []
    return [_cancel(CANCEL_ON_DEACTIVATION, order, reason, fact)
            for order in state.open_orders()]


def late_order(state: CustomerState, fact: Fact) -> list[Cancel]:
    """The order `fact` creates, when its customer is inactive already (`state`: before it)."""
    if fact.kind != ORDER_CREATED or state.status not in INACTIVE:
        return []
    return [_cancel(LATE_ORDER, fact.source, INACTIVE_REASON, fact)]


DECIDERS: Final[dict[str, Callable[[CustomerState, Fact], list[Cancel]]]] = {
    CANCEL_ON_DEACTIVATION: cancel_on_deactivation,
    LATE_ORDER: late_order,
}


def decide(manager: str, state: CustomerState, fact: Fact) -> Decision:
    """What `manager` does with `fact`: the customer's next state and the commands to send
    (send them, durably, before storing the state: see the module docstring)."""
    if not is_new(state, fact):
        return Decision(state, (), new=False)
    cancels = DECIDERS[manager](state, fact)
    after = mark_cancelling(evolve(state, fact), [cancel.order for cancel in cancels])
    return Decision(after, tuple(cancels), new=True)
