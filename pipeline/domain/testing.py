"""A given-events / when-command / then-events-or-rejection kit for deciders, usable by any test."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.domain.aggregates import Decision, State, decide, fold
from pipeline.domain.common import CustomerStatus, DecisionContext, Rejection
from topics import Command, Event

FIXED_NOW = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Outcome:
    """What `decide` returned for a scenario."""

    decision: Decision

    def then(self, *expected: Event) -> None:
        """Assert the command was accepted with exactly `expected` events (possibly none)."""
        if isinstance(self.decision, Rejection):
            raise AssertionError(f"expected events {list(expected)}, got {self.decision!r}")
        if list(self.decision) != list(expected):
            raise AssertionError(f"expected events {list(expected)}, got {self.decision}")

    def then_rejected(self, code: str) -> Rejection:
        """Assert the command was rejected with `code`; returns the rejection."""
        if not isinstance(self.decision, Rejection):
            raise AssertionError(f"expected rejection {code!r}, got events {self.decision}")
        if self.decision.code != code:
            raise AssertionError(f"expected rejection {code!r}, got {self.decision!r}")
        return self.decision


@dataclass(frozen=True)
class Scenario:
    """A stream's history plus the customers the context knows."""

    history: tuple[Event, ...]
    customers: tuple[tuple[str, CustomerStatus], ...] = ()

    def with_customer(self, user_id: str, status: CustomerStatus = "active") -> Scenario:
        return Scenario(self.history, (*self.customers, (user_id, status)))

    @property
    def state(self) -> State | None:
        return fold(None, self.history)

    def when(self, command: Command) -> Outcome:
        known = dict(self.customers)
        context = DecisionContext(now=FIXED_NOW, customer_status=known.get)
        return Outcome(decide(self.state, command, context))


def given(*history: Event) -> Scenario:
    """Start a scenario from the events already in the stream (none for a new stream)."""
    return Scenario(history)
