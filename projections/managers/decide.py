"""The two process managers as pure deciders: (state, fact) → new state + `CancelOrder`s to send.

- `cancel-on-deactivation` (`CANCEL_ON_DEACTIVATION`): a customer deactivated or forgotten →
  cancel each order that was open then, created before it (reason `customer.deactivated` /
  `customer.forgotten`);
- `late-order` (`LATE_ORDER`): an order created while its customer was already deactivated or
  forgotten (the processor checked the customer against a replica that had not caught up) →
  cancel it (reason `customer.inactive`).

Both go by the events' times (`CustomerState.status_at`), so it does not matter which fact
arrives first: a deactivation's fact cancels the orders created before it that are already known,
and an order's fact that arrives after a deactivation it preceded is cancelled then, with the
same command id (the cause is the deactivation either way). The two sets are disjoint: an order
created while the customer was active can only be cancel-on-deactivation's, one created while
inactive only late-order's.

Command ids are deterministic: uuid5 over the manager, the order's stream id and the cause (the
key of the event that caused the cancel, `<stream_id>@<version>`). Deciding the same fact again,
after a crash or from a fact forwarded twice, gives the same ids, which the processor answers
`duplicate` without new events: a restart never compensates twice. Each command carries the
order's version the manager saw as `expected_version`, so an order paid meanwhile (its fact not
yet read) is refused `concurrency.version_conflict`, never cancelled; shipped and cancelled
orders are refused by the order's own rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from projections.managers.facts import ORDER_CREATED, USER_DEACTIVATED, USER_FORGOTTEN, Fact
from projections.managers.state import (
    FORGOTTEN,
    INACTIVE,
    CustomerState,
    evolve,
    is_new,
    mark_cancelling,
    moment,
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
    """Send `CancelOrder(reason)` to `order` (a stream id) with id `command_id`, expecting the
    order at `expected_version`."""

    manager: str
    order: str
    reason: str
    cause: str
    command_id: str
    expected_version: int


@dataclass(frozen=True)
class Decision:
    state: CustomerState
    cancels: tuple[Cancel, ...]
    new: bool
    """False when the fact was already applied (a repeat): nothing changes, nothing is sent."""


def _cancel(manager: str, order: str, reason: str, cause: str, expected: int) -> Cancel:
    return Cancel(manager, order, reason, cause, command_id_for(manager, order, cause), expected)


def cancel_on_deactivation(before: CustomerState, after: CustomerState,
                           fact: Fact) -> list[Cancel]:
    """Orders open when the customer was deactivated or forgotten: on the deactivation's fact,
    the known open orders created before it; on an order's fact, the order if a deactivation
    already seen came after its creation."""
    reason = REASONS.get(fact.kind)
    if reason is not None:
        when = moment(fact.occurred_at)
        return [_cancel(CANCEL_ON_DEACTIVATION, order, reason, fact.cause, view.version)
                for order in before.open_orders()
                if (view := before.orders[order]).created_at
                and moment(view.created_at) < when
                and before.status_at(view.created_at) not in INACTIVE]  # else late-order's
    if fact.kind != ORDER_CREATED or after.status_at(fact.occurred_at) in INACTIVE:
        return []
    change = after.inactive_after(fact.occurred_at)
    if change is None:
        return []
    reason = REASONS[USER_FORGOTTEN if change.status == FORGOTTEN else USER_DEACTIVATED]
    return [_cancel(CANCEL_ON_DEACTIVATION, fact.source, reason,
                    f"{fact.customer}@{change.version}", fact.version)]


def late_order(before: CustomerState, after: CustomerState, fact: Fact) -> list[Cancel]:
    """Orders created while the customer was inactive: on the order's fact, by the changes seen
    so far; on a deactivation's fact, the known open orders it now places in an inactive time."""
    if fact.kind == ORDER_CREATED:
        if after.status_at(fact.occurred_at) not in INACTIVE:
            return []
        return [_cancel(LATE_ORDER, fact.source, INACTIVE_REASON, fact.cause, fact.version)]
    if fact.kind not in REASONS:
        return []
    return [_cancel(LATE_ORDER, order, INACTIVE_REASON, f"{order}@{view.version}", view.version)
            for order in after.open_orders()
            if (view := after.orders[order]).created_at
            and after.status_at(view.created_at) in INACTIVE
            and before.status_at(view.created_at) not in INACTIVE]


DECIDERS: Final[dict[str, Callable[[CustomerState, CustomerState, Fact], list[Cancel]]]] = {
    CANCEL_ON_DEACTIVATION: cancel_on_deactivation,
    LATE_ORDER: late_order,
}


def decide(manager: str, state: CustomerState, fact: Fact) -> Decision:
    """What `manager` does with `fact`: the customer's next state and the commands to send
    (send them, durably, before storing the state: see the module docstring)."""
    if not is_new(state, fact):
        return Decision(state, (), new=False)
    after = evolve(state, fact)
    cancels = DECIDERS[manager](state, after, fact)
    return Decision(mark_cancelling(after, [cancel.order for cancel in cancels]),
                    tuple(cancels), new=True)
