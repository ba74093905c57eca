"""The type registries, built here only: command and event type names to aggregate and model,
and the upcasting chains (`UPCASTERS`) that every reader of the events topic shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from topics._commands import (
    CancelOrder,
    CreateOrder,
    CreateUser,
    DeactivateUser,
    ForgetUser,
    PayOrder,
    ReactivateUser,
    ShipOrder,
    UpdateUser,
)
from topics._events import (
    OrderCancelled,
    OrderCreated,
    OrderPaid,
    OrderShipped,
    UserCreated,
    UserDeactivated,
    UserEmailChanged,
    UserForgotten,
    UserNameChanged,
    UserReactivated,
)
from topics._messages import Command, Event
from topics._upcasters import order_created_v1_to_v2, user_created_v1_to_v2
from topics._upcasting import Upcasters
from topics.errors import UnknownMessageType

USER_AGGREGATE = "user"
ORDER_AGGREGATE = "order"


@dataclass(frozen=True)
class CommandSpec:
    """A command type: the aggregate its streams belong to, and its model."""

    aggregate_type: str
    model: type[Command]


@dataclass(frozen=True)
class EventSpec:
    """An event type: the aggregate its streams belong to, and its (current) model."""

    aggregate_type: str
    model: type[Event]


COMMANDS: Mapping[str, CommandSpec] = {
    model.__name__: CommandSpec(aggregate_type, model)
    for aggregate_type, models in (
        (USER_AGGREGATE, (CreateUser, UpdateUser, DeactivateUser, ReactivateUser, ForgetUser)),
        (ORDER_AGGREGATE, (CreateOrder, PayOrder, ShipOrder, CancelOrder)),
    )
    for model in models
}

EVENTS: Mapping[str, EventSpec] = {
    model.__name__: EventSpec(aggregate_type, model)
    for aggregate_type, models in (
        (
            USER_AGGREGATE,
            (UserCreated, UserEmailChanged, UserNameChanged, UserDeactivated, UserReactivated,
             UserForgotten),
        ),
        (ORDER_AGGREGATE, (OrderCreated, OrderPaid, OrderShipped, OrderCancelled)),
    )
    for model in models
}

UPCASTERS = Upcasters()
UPCASTERS.register("UserCreated", 1, user_created_v1_to_v2)
UPCASTERS.register("OrderCreated", 1, order_created_v1_to_v2)


def command_spec(type_name: str) -> CommandSpec:
    """The registry entry of a command type; raises `UnknownMessageType`."""
    try:
        return COMMANDS[type_name]
    except KeyError:
        raise UnknownMessageType(f"unknown command type {type_name!r}") from None


def event_spec(type_name: str) -> EventSpec:
    """The registry entry of an event type; raises `UnknownMessageType`."""
    try:
        return EVENTS[type_name]
    except KeyError:
        raise UnknownMessageType(f"unknown event type {type_name!r}") from None


def aggregate_type_of(command_type: str) -> str | None:
    """The aggregate a command type addresses (`"user"`, `"order"`), or `None` if unknown."""
    spec = COMMANDS.get(command_type)
    return spec.aggregate_type if spec else None
