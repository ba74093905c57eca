"""Exceptions of the domain: only for impossible histories, never for rejected commands.

Exception tree::

    DomainError
    ├── InvalidHistory        evolve met an event that cannot follow the state (corrupt stream)
    └── UnknownMessageType    a command or event type name no registry entry knows

A command that breaks a rule is not an exception: `decide` returns a `Rejection` (data).
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the domain's exceptions."""


class InvalidHistory(DomainError):
    """`evolve` was asked to apply an event that cannot follow the current state."""


class UnknownMessageType(DomainError, KeyError):
    """A type name that is not in the command or event registry."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown message type"
