"""The aggregate processor: commands in, events, snapshots and results out, exactly once."""

from pipeline.processor.config import ProcessorConfig, TopicNames
from pipeline.processor.counters import ProcessorCounts
from pipeline.processor.handling import BatchContext, Handled, RecordOutcome, handle
from pipeline.processor.loop import Processor
from pipeline.processor.ports import (
    CommandSource,
    PartitionReader,
    ProcessorPorts,
    ProducerPort,
    SnapshotTail,
    TopicPosition,
    UsersReplica,
)
from pipeline.processor.state import Overlay, StateStore, StreamState

__all__ = [
    "BatchContext",
    "CommandSource",
    "Handled",
    "Overlay",
    "PartitionReader",
    "Processor",
    "ProcessorConfig",
    "ProcessorCounts",
    "ProcessorPorts",
    "ProducerPort",
    "RecordOutcome",
    "SnapshotTail",
    "StateStore",
    "StreamState",
    "TopicNames",
    "TopicPosition",
    "UsersReplica",
    "handle",
]
