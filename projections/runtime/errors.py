"""The exceptions of the projector runtime; every one derives from `ProjectionError`.

Exception tree::

    ProjectionError
    ├── TransientError     the store (or DLQ) could not be reached or timed out: retried in place,
    │                      with backoff, until it works or the projector is stopped
    ├── PoisonEvent        one event of a batch can never be applied (deterministic): it goes to
    │                      the DLQ and later events of its stream are parked
    ├── UnfitRecord        a record that decodes but can never be an event of its stream here
    │   ├── KeyMismatch      its key is not `<stream_id>@<version>` of its value
    │   ├── HeaderMismatch   a routing header (type, stream_id, version, schema_version)
    │   │                    disagrees with its value
    │   └── WrongPartition   not on `partition_for(stream_id, partitions)` of the events topic
    ├── UnreadableHeaders  a header name is not UTF-8 (read with `surrogateescape`, see
    │                      `projections.runtime.drain`): the record is dead-lettered unread
    └── QueryTimeout       a query's `min_version` was not reached within its bound

Whatever a record's content makes decoding or a store raise (other than `TransientError`) is that
record's fault: dead-lettered, never a reason to stop (`projections.runtime.classify`,
`BatchProcessor`). Only a fault that no single record explains stops the process non-zero.
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


class UnfitRecord(ProjectionError):
    """A record that decodes as an event but disagrees with where or how it was written."""


class KeyMismatch(UnfitRecord):
    """The record key is not `<stream_id>@<version>` of the event in its value."""


class HeaderMismatch(UnfitRecord):
    """A routing header disagrees with the event in the value (or is not UTF-8)."""


class WrongPartition(UnfitRecord):
    """The event is not on its stream's partition: its stream has another writer's order."""


class UnreadableHeaders(ProjectionError):
    """A header name of the record is not UTF-8 (Kafka's header names are UTF-8 strings)."""


class QueryTimeout(ProjectionError, TimeoutError):
    """The read model did not reach the requested `min_version` in time."""
