"""Domain building blocks: `Rejection`, the decision context, version checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError


class Rejection(BaseModel):
    """Why a command was refused: a stable machine `code` and a readable `reason`."""

    model_config = ConfigDict(frozen=True)

    code: str
    reason: str


CustomerStatus = Literal["active", "deactivated", "forgotten"]


class CustomerStatusLookup(Protocol):
    """Read-only view of users' status: `None` for a user that does not exist (as far as known)."""

    def __call__(self, user_id: str, /) -> CustomerStatus | None: ...


def no_customers(user_id: str, /) -> CustomerStatus | None:
    """A lookup that knows no users (for aggregates that do not need one)."""
    return None


@dataclass(frozen=True)
class DecisionContext:
    """What `decide` may know beyond state and command; passed in, never read from globals.

    `now` is the processor's clock reading for the batch; `customer_status` answers the
    cross-aggregate question "does this user exist and is it active?".
    """

    now: datetime
    customer_status: CustomerStatusLookup = no_customers


def check_expected_version(current_version: int, expected: int | None) -> Rejection | None:
    """Optimistic concurrency: a rejection when `expected` is given and is not `current_version`."""
    if expected is None or expected == current_version:
        return None
    return Rejection(
        code="concurrency.version_conflict",
        reason=f"expected version {expected}, but the stream is at version {current_version}",
    )


def validation_rejection(error: ValidationError) -> Rejection:
    """A `validation.<kind>` rejection from the first problem of a pydantic error, all listed."""
    problems = error.errors(include_url=False, include_input=False)
    kind = problems[0]["type"] if problems else "invalid"
    reason = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or '(root)'}: {problem['msg']}"
        for problem in problems
    )
    return Rejection(code=f"validation.{kind}", reason=reason)
