"""The aggregate registry, built here only: aggregate type to state model, `decide` and `evolve`.

Commands and events are the contract's (`topics.COMMANDS`, `topics.EVENTS` name each type's
aggregate); this module dispatches them to their aggregate's pure functions, and turns states to
and from snapshot data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from pipeline.domain import orders, users
from pipeline.domain.common import DecisionContext, Rejection, validation_rejection
from topics import (
    COMMANDS,
    ORDER_AGGREGATE,
    USER_AGGREGATE,
    Command,
    Event,
    command_spec,
    event_spec,
)

State = users.UserState | orders.OrderState
Decision = list[Event] | Rejection
Decider = Callable[[Any, Any, DecisionContext], Any]
Evolver = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class AggregateSpec:
    state_model: type[BaseModel]
    decide: Decider
    evolve: Evolver


AGGREGATES: Mapping[str, AggregateSpec] = {
    USER_AGGREGATE: AggregateSpec(users.UserState, users.decide, users.evolve),
    ORDER_AGGREGATE: AggregateSpec(orders.OrderState, orders.decide, orders.evolve),
}


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
    aggregate = AGGREGATES[command_spec(type(command).__name__).aggregate_type]
    result: Decision = aggregate.decide(state, command, context)
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
    """Dispatch an event to its aggregate's `evolve`; raises `topics.InvalidHistory` for an event
    that cannot follow `state`, `topics.UnknownMessageType` for an unknown type."""
    aggregate = AGGREGATES[event_spec(type(event).__name__).aggregate_type]
    new_state: State = aggregate.evolve(state, event)
    return new_state


def fold(state: State | None, events: Iterable[Event]) -> State | None:
    """`state` after every event of `events`, in order."""
    for event in events:
        state = evolve(state, event)
    return state


def state_to_data(state: State | None) -> dict[str, Any] | None:
    """A state as JSON-ready data for `topics.Snapshot.state`. A user's `forgotten` is written
    only when true: every other user snapshot stays readable by a processor that predates
    erasure (a rolling upgrade, a rollback), whose state model forbids unknown fields."""
    if state is None:
        return None
    if isinstance(state, users.UserState) and not state.forgotten:
        return state.model_dump(mode="json", exclude={"forgotten"})
    return state.model_dump(mode="json")


def state_from_data(aggregate_type: str, data: Mapping[str, Any] | None) -> State | None:
    """Inverse of `state_to_data` for the given aggregate type."""
    if data is None:
        return None
    state = AGGREGATES[aggregate_type].state_model.model_validate(data)
    assert isinstance(state, users.UserState | orders.OrderState)
    return state
