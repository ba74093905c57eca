"""What a transaction's failure means to the loop: the producer fault tree (no Kafka here).

Error tree (what the transaction loop does with each)::

    ProducerFault
    ├── AbortableFault   abort, rewind to committed offsets, drop the overlay
    └── FatalFault       a fatal error, a commit whose outcome is unknown (timed out) or any other
                         non-retriable error: close the producer, start a new one with the same
                         transactional id (init_transactions fences the old), restore, rewind
    ProducerFenced       another producer took this transactional id: the process stops

A fault `implicates_record` when it blames what was produced (too large, invalid record, an
argument the client refuses), not the transport, a timeout or the broker's state; only those
count against a record in the loop's cautious mode (see `caution`). Every sink (the Kafka one in
`transactions`, the in-memory one in `memory`) raises only these.
"""

from __future__ import annotations


class ProducerFault(Exception):
    """A transaction could not complete; the loop recovers according to the subclass."""

    def __init__(self, message: str, *, implicates_record: bool = False) -> None:
        super().__init__(message)
        self.implicates_record = implicates_record


class AbortableFault(ProducerFault):
    """The open transaction must be aborted; the producer stays usable."""


class FatalFault(ProducerFault):
    """The producer must not be used again (fatal error, or a commit of unknown outcome)."""


class ProducerFenced(Exception):
    """Another producer uses this process's transactional id and fenced it: this process must
    stop (not restart its producer and fence the other back)."""


def fenced_message(transactional_id: object) -> str:
    """What a fenced processor says before it exits 78: the broker's answer is the same for
    both causes, so both are named, each with its remedy."""
    return (
        f"producer fenced: a newer producer epoch holds transactional.id {transactional_id!r}. "
        "Either another processor runs with the same id (give each processor a distinct "
        "--instance-id, CQRS_PROCESSOR_INSTANCE_ID), or this one stalled (paused, swapped, a "
        "broker failover) past its transaction timeout and the coordinator aborted its "
        "transaction (restart it; size CQRS_PROCESSOR_TRANSACTION_TIMEOUT_MS above such "
        "stalls). Nothing it had not committed became visible."
    )
