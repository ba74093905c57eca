"""The shared projector runtime: one Faust app per projector, reading committed events only.

How a projector plugs in (see `projections.registry`)::

    def make_app(config: ProjectionsConfig) -> ProjectorApp:
        store = MyStore(...)                       # implements `Store`
        return make_projector_app("myname", config.kafka, config.catalogue, store)

and a line `"myname": make_app` in `projections.registry.PROJECTORS`; `cqrs project myname` runs
it. Every record is classified by `classify` (one classification for every projector: `Item`,
`Skip` for a tombstone, `Poison` for anything that can never apply). The runtime gives the store
batches (`Batch`: decoded `Item`s in partition order, the records parked behind a dead-lettered
event, and the last offset per partition); the store must:

- `apply(batch)` atomically (items + parked records + checkpoints, or nothing), idempotently by
  event version, returning `Applied(applied, skipped)`;
- raise `TransientError` for faults worth retrying (retried forever with backoff), and
  `PoisonEvent(index, cause)` for an item that can never apply (it is dead-lettered, its stream
  parked, and the rest of the batch applied again); anything else it raises makes the runtime
  apply the batch item by item and dead-letter the item(s) that raise it alone (a fault that
  no item explains, such as the batch's checkpoints failing alone, stops the process non-zero);
- return its `checkpoints(topic)` (the consumer seeks to checkpoint + 1 after every rebalance) and
  its `parked_streams()` (kept across restarts; read again with the checkpoints, since another
  instance may have parked a stream of a partition this one takes over); both may raise
  `TransientError` too, retried with the same backoff until the store answers (a rebalance
  waits, up to just before Faust's timeout of that step, then the process exits non-zero; it
  never seeks elsewhere).

Guarantees: read_committed consumption (aborted transactions never seen), at-least-once delivery
made exactly-once in effect by the store's version guards and checkpoint, DLQ records durable
before the checkpoint passes them, counters with
`consumed == applied + skipped + parked + dead_lettered` (`app.processor.counters.snapshot()`).
"""

from projections.runtime.app import BatchOptions, exit_process, make_projector_app
from projections.runtime.classify import Classified, Poison, Skip, classify, stream_of
from projections.runtime.errors import PoisonEvent, ProjectionError, QueryTimeout, TransientError
from projections.runtime.faust_app import ProjectorApp, make_worker, run_worker
from projections.runtime.processor import Backoff, BatchProcessor, Counters
from projections.runtime.records import (
    Applied,
    Batch,
    DeadLetters,
    Item,
    SourceRecord,
    Store,
)

__all__ = [
    "Applied",
    "Backoff",
    "Batch",
    "BatchOptions",
    "BatchProcessor",
    "Classified",
    "Counters",
    "DeadLetters",
    "Item",
    "Poison",
    "PoisonEvent",
    "ProjectionError",
    "ProjectorApp",
    "QueryTimeout",
    "Skip",
    "SourceRecord",
    "Store",
    "TransientError",
    "classify",
    "exit_process",
    "make_projector_app",
    "make_worker",
    "run_worker",
    "stream_of",
]
