"""Operating projectors from outside: replay positions, lag, and dead-letter inspection and retry.

The store checkpoint is each projector's truth (`projections.runtime`); these tools read it,
move it only while the projector is stopped, and keep the group offsets in step for lag tools.
"""

from projections.operations.dlq import (
    DlqEntry,
    RetryOutcome,
    entries,
    entry_at,
    parse_position,
    retry_command,
    retry_projector,
    with_status,
)
from projections.operations.errors import InvalidPosition, OperationsError, ProjectorRunning
from projections.operations.kafka import KafkaOps
from projections.operations.lag import ComponentLag, PartitionLag, processor_lag, projector_lag
from projections.operations.positions import StartAt, parse_offsets, parse_timestamp
from projections.operations.replay import ReplayPlan, ensure_stopped, replay
from projections.operations.stores import OperableStore, group_of, open_store

__all__ = [
    "ComponentLag",
    "DlqEntry",
    "InvalidPosition",
    "KafkaOps",
    "OperableStore",
    "OperationsError",
    "PartitionLag",
    "ProjectorRunning",
    "ReplayPlan",
    "RetryOutcome",
    "StartAt",
    "ensure_stopped",
    "entries",
    "entry_at",
    "group_of",
    "open_store",
    "parse_offsets",
    "parse_position",
    "parse_timestamp",
    "processor_lag",
    "projector_lag",
    "replay",
    "retry_command",
    "retry_projector",
    "with_status",
]
