"""The user aggregate: create, update (changed fields only), deactivate, reactivate, forget.

A forgotten user keeps no personal data in its state (empty email and name) and refuses every
later command with `user.forgotten`, `CreateUser` included: an erased id is never reused, so
nothing that still names it (orders, an old client) can reach a new person (docs/erasure.md).

Its commands and events are the contract's (`topics`); the state and the rules are here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from pipeline.domain.common import CustomerStatus, DecisionContext, Rejection
from topics import (
    CreateUser,
    DeactivateUser,
    ForgetUser,
    InvalidHistory,
    UpdateUser,
    UserCommand,
    UserCreated,
    UserDeactivated,
    UserEmailChanged,
    UserEvent,
    UserForgotten,
    UserNameChanged,
    UserReactivated,
)


class UserState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str
    name: str
    active: bool = True
    forgotten: bool = False


UserDecision = list[UserEvent] | Rejection

_NOT_FOUND = Rejection(code="user.not_found", reason="the user does not exist")
_FORGOTTEN = Rejection(code="user.forgotten",
                       reason="the user was forgotten (erased); its id cannot be used again")


def decide(state: UserState | None, command: UserCommand, context: DecisionContext) -> UserDecision:
    """The events `command` causes on a user in `state`, or why it is refused. Pure."""
    if state is not None and state.forgotten:
        return _FORGOTTEN
    if isinstance(command, CreateUser):
        if state is not None:
            return Rejection(code="user.already_exists", reason="the user already exists")
        return [UserCreated(email=command.email, name=command.name)]
    if state is None:
        return _NOT_FOUND
    if isinstance(command, UpdateUser):
        return _update(state, command)
    if isinstance(command, ForgetUser):
        return [UserForgotten(reason=command.reason, requested_by=command.requested_by)]
    if isinstance(command, DeactivateUser):
        if not state.active:
            return Rejection(code="user.already_deactivated", reason="the user is deactivated")
        return [UserDeactivated(reason=command.reason)]
    if state.active:
        return Rejection(code="user.not_deactivated", reason="the user is already active")
    return [UserReactivated()]


def _update(state: UserState, command: UpdateUser) -> UserDecision:
    if not state.active:
        return Rejection(code="user.deactivated", reason="a deactivated user cannot be updated")
    events: list[UserEvent] = []
    if command.email is not None and command.email != state.email:
        events.append(UserEmailChanged(email=command.email))
    if command.name is not None and command.name != state.name:
        events.append(UserNameChanged(name=command.name))
    return events


def evolve(state: UserState | None, event: UserEvent) -> UserState:
    """The user after `event`; raises `InvalidHistory` for an event that cannot follow `state`."""
    if isinstance(event, UserCreated):
        if state is not None:
            raise InvalidHistory("UserCreated on an existing user")
        return UserState(email=event.email, name=event.name)
    if isinstance(event, UserForgotten) and (state is None or not state.forgotten):
        return FORGOTTEN  # also on no state: a compacted log keeps only the stream's forget
    if state is None:
        raise InvalidHistory(f"{type(event).__name__} before UserCreated")
    if state.forgotten:
        raise InvalidHistory(f"{type(event).__name__} after UserForgotten")
    if isinstance(event, UserEmailChanged):
        return state.model_copy(update={"email": event.email})
    if isinstance(event, UserNameChanged):
        return state.model_copy(update={"name": event.name})
    return state.model_copy(update={"active": isinstance(event, UserReactivated)})


FORGOTTEN = UserState(email="", name="", active=False, forgotten=True)
"""Every forgotten user's state: nothing of the person is left in it."""


def status(state: UserState | None) -> CustomerStatus | None:
    """What a `CustomerStatusLookup` answers for a user in `state`."""
    if state is None:
        return None
    if state.forgotten:
        return "forgotten"
    return "active" if state.active else "deactivated"
