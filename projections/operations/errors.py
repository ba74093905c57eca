"""The exceptions of the operations tools; every one derives from `OperationsError`.

Exception tree::

    OperationsError        a Kafka or store answer that stops the operation (message says why)
    ├── ProjectorRunning   the projector's consumer group has members: positions are its own
    └── InvalidPosition    a `--from-offset`, timestamp or DLQ position that cannot be used
"""

from __future__ import annotations


class OperationsError(Exception):
    """Base of the operations tools' exceptions."""


class ProjectorRunning(OperationsError):
    """The projector is running; moving its checkpoint now would be overwritten by it."""


class InvalidPosition(OperationsError, ValueError):
    """A position argument that does not parse or names no partition of the topic."""
