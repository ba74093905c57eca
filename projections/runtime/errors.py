"""The exceptions of the projector runtime; every one derives from `ProjectionError`.

Exception tree::

    ProjectionError
    ├── TransientError     the store (or DLQ) could not be reached or timed out: retried in place,
    │                      with backoff, until it works or the projector is stopped
    ├── PoisonEvent        one event of a batch can never be applied (deterministic): it goes to
    │                      the DLQ and later events of its stream are parked
    └── QueryTimeout       a query's `min_version` was not reached within its bound

Anything else raised by a store is a bug: the projector process exits non-zero.
"""

from __future__ import annotations


class ProjectionError(Exception):
    """Base of the projector runtime's exceptions."""


class TransientError(ProjectionError):
    """A fault that may go away by itself (database down, timeout, HTTP 429/503)."""


class PoisonEvent(ProjectionError):
    """Event number `index` of the batch handed to `Store.apply` can never be applied.

    The store must have rolled back (or never started) the whole batch before raising it; the
    runtime dead-letters that event, parks its stream and applies the rest again.
    """

    def __init__(self, index: int, cause: BaseException) -> None:
        super().__init__(f"event {index} of the batch is poison: {type(cause).__name__}: {cause}")
        self.index = index
        self.cause = cause


class QueryTimeout(ProjectionError, TimeoutError):
    """The read model did not reach the requested `min_version` in time."""
