"""The aggregate processor: commands in, events, snapshots and results out, exactly once."""

from pipeline.processor.config import ProcessorConfig, TopicNames
from pipeline.processor.counters import Counters
from pipeline.processor.handling import Batch, Handled, Outcome, handle
from pipeline.processor.loop import Processor
from pipeline.processor.state import Overlay, StateStore, StreamState

__all__ = [
    "Batch",
    "Counters",
    "Handled",
    "Outcome",
    "Overlay",
    "Processor",
    "ProcessorConfig",
    "StateStore",
    "StreamState",
    "TopicNames",
    "handle",
]
