"""The registry of command and event type names to models and aggregates, built here only.

Event ids: the processor names the event at `version` of `stream_id` `"<stream_id>@<version>"`
(`event_id_for`), the same text as its record key. One writer per stream makes it unique, and it
is deterministic, so a retried transaction writes the same ids again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from pipeline.domain import orders, upcasters, users
from pipeline.domain.common import (
    Command,
    DecisionContext,
    Event,
    Rejection,
    validation_rejection,
)
from pipeline.domain.errors import UnknownMessageType
from topics.envelopes import EventEnvelope, event_key
from topics.upcasting import Upcasters

State = users.UserState | orders.OrderState
Decision = list[Event] | Rejection
Decider = Callable[[Any, Any, DecisionContext], Any]
Evolver = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class CommandSpec:
    aggregate_type: str
    model: type[Command]
    decide: Decider


@dataclass(frozen=True)
class EventSpec:
    aggregate_type: str
    model: type[Event]
    evolve: Evolver


@dataclass(frozen=True)
class AggregateSpec:
    state_model: type[BaseModel]
    decide: Decider
    evolve: Evolver


AGGREGATES: Mapping[str, AggregateSpec] = {
    users.AGGREGATE_TYPE: AggregateSpec(users.UserState, users.decide, users.evolve),
    orders.AGGREGATE_TYPE: AggregateSpec(orders.OrderState, orders.decide, orders.evolve),
}

COMMANDS: Mapping[str, CommandSpec] = {
    model.__name__: CommandSpec(aggregate_type, model, AGGREGATES[aggregate_type].decide)
    for aggregate_type, models in (
        (
            users.AGGREGATE_TYPE,
            (users.CreateUser, users.UpdateUser, users.DeactivateUser, users.ReactivateUser),
        ),
        (
            orders.AGGREGATE_TYPE,
            (orders.CreateOrder, orders.PayOrder, orders.ShipOrder, orders.CancelOrder),
        ),
    )
    for model in models
}

EVENTS: Mapping[str, EventSpec] = {
    model.__name__: EventSpec(aggregate_type, model, AGGREGATES[aggregate_type].evolve)
    for aggregate_type, models in (
        (
            users.AGGREGATE_TYPE,
            (
                users.UserCreated,
                users.UserEmailChanged,
                users.UserNameChanged,
                users.UserDeactivated,
                users.UserReactivated,
            ),
        ),
        (
            orders.AGGREGATE_TYPE,
            (orders.OrderCreated, orders.OrderPaid, orders.OrderShipped, orders.OrderCancelled),
        ),
    )
    for model in models
}

UPCASTERS = Upcasters()
UPCASTERS.register("UserCreated", 1, upcasters.user_created_v1_to_v2)
UPCASTERS.register("OrderCreated", 1, upcasters.order_created_v1_to_v2)


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


def parse_command(type_name: str, data: Mapping[str, Any]) -> Command | Rejection:
    """`data` validated as `type_name`, or a `command.unknown_type`/`validation.*` rejection."""
    spec = COMMANDS.get(type_name)
    if spec is None:
        return Rejection(code="command.unknown_type", reason=f"unknown command type {type_name!r}")
    try:
        return spec.model.model_validate(data)
    except ValidationError as error:
        return validation_rejection(error)


def decide(state: State | None, command: Command, context: DecisionContext) -> Decision:
    """Dispatch a command instance to its aggregate's `decide`."""
    result: Decision = command_spec(type(command).__name__).decide(state, command, context)
    return result


def decide_command(
    type_name: str, state: State | None, data: Mapping[str, Any], context: DecisionContext
) -> Decision:
    """The processor's one call: validate `data` as `type_name`, then decide against `state`."""
    command = parse_command(type_name, data)
    if isinstance(command, Rejection):
        return command
    return decide(state, command, context)


def evolve(state: State | None, event: Event) -> State:
    """Dispatch an event to its aggregate's `evolve`."""
    new_state: State = event_spec(type(event).__name__).evolve(state, event)
    return new_state


def fold(state: State | None, events: Iterable[Event]) -> State | None:
    """`state` after every event of `events`, in order."""
    for event in events:
        state = evolve(state, event)
    return state


def event_id_for(stream_id: str, version: int) -> str:
    """The id of the event at `version` of `stream_id` (see the module docstring)."""
    return event_key(stream_id, version)


def to_envelope(
    event: Event,
    stream_id: str,
    version: int,
    event_id: str,
    occurred_at: datetime,
    causation_id: str | None,
    correlation_id: str | None,
) -> EventEnvelope:
    """Wrap a domain event for the events topic, at its model's current schema version."""
    return EventEnvelope(
        event_id=event_id,
        type=type(event).__name__,
        schema_version=type(event).schema_version,
        stream_id=stream_id,
        version=version,
        data=event.model_dump(mode="json"),
        occurred_at=occurred_at,
        causation_id=causation_id,
        correlation_id=correlation_id,
    )


def from_envelope(envelope: EventEnvelope, upcasters: Upcasters = UPCASTERS) -> Event:
    """The domain event in `envelope`, upcast first; raises `UnknownMessageType`,
    `topics.errors.UpcastError`, or pydantic's `ValidationError` for data that does not fit."""
    spec = event_spec(envelope.type)
    current = upcasters.upcast(envelope, to_version=spec.model.schema_version)
    return spec.model.model_validate(current.data)


def state_to_data(state: State | None) -> dict[str, Any] | None:
    """A state as JSON-ready data for `topics.envelopes.Snapshot.state`."""
    return None if state is None else state.model_dump(mode="json")


def state_from_data(aggregate_type: str, data: Mapping[str, Any] | None) -> State | None:
    """Inverse of `state_to_data` for the given aggregate type."""
    if data is None:
        return None
    state = AGGREGATES[aggregate_type].state_model.model_validate(data)
    assert isinstance(state, users.UserState | orders.OrderState)
    return state
