"""The one transactional producer of a process, and how its errors are classified.

Error tree (what the transaction loop does with each)::

    ProducerFault
    ├── AbortableFault   txn_requires_abort(): abort, rewind to committed offsets, drop the overlay
    └── FatalFault       fatal(), a commit that timed out (outcome unknown) or any other
                         non-retriable error: close the producer, start a new one with the same
                         transactional id (init_transactions fences the old), restore, rewind

Retriable errors are retried in place (bounded, with backoff) and never leave this module.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, Producer

from pipeline.processor.records import OutboundRecord

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_RETRIES = 20
_TIMEOUT_S = 30.0


class ProducerFault(Exception):
    """A transaction could not complete; the loop recovers according to the subclass."""


class AbortableFault(ProducerFault):
    """The open transaction must be aborted; the producer stays usable."""


class FatalFault(ProducerFault):
    """The producer must not be used again (fatal error, or a commit of unknown outcome)."""


def classify(error: KafkaError, *, commit: bool = False) -> ProducerFault | None:
    """`None` when the call may be retried, else the fault to raise."""
    if error.fatal():
        return FatalFault(str(error))
    if error.txn_requires_abort():
        return AbortableFault(str(error))
    if commit and error.code() == KafkaError._TIMED_OUT:
        return FatalFault(f"commit outcome unknown: {error}")
    if error.retriable():
        return None
    return FatalFault(str(error))


def call(operation: Callable[..., _T], *args: Any, commit: bool = False) -> _T:
    """Run a producer operation, retrying retriable errors; raise a `ProducerFault` otherwise."""
    for attempt in range(_RETRIES):
        try:
            return operation(*args)
        except KafkaException as exception:
            error = exception.args[0]
            fault = classify(error, commit=commit)
            if fault is not None:
                raise fault from exception
            log.warning("retrying", extra={"error": str(error), "fields": {"attempt": attempt}})
            time.sleep(min(0.05 * 2**attempt, 1.0))
    raise FatalFault(f"{getattr(operation, '__name__', operation)} kept failing")


class TransactionalProducer:
    """Owns the confluent-kafka `Producer`; `reset` replaces it, never reuses it after a fault."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._producer = self._start()

    def _start(self) -> Any:
        producer = Producer(self._config)
        call(producer.init_transactions, _TIMEOUT_S)
        log.info(
            "producer ready",
            extra={"fields": {"transactional_id": self._config.get("transactional.id")}},
        )
        return producer

    def begin(self) -> None:
        call(self._producer.begin_transaction)

    def produce(self, record: OutboundRecord) -> None:
        while True:
            try:
                self._producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    partition=record.partition,
                    headers=record.headers,
                )
                return
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as exception:
                fault = classify(exception.args[0])
                raise fault or AbortableFault(str(exception)) from exception

    def send_offsets(self, offsets: list[Any], group_metadata: Any) -> None:
        call(self._producer.send_offsets_to_transaction, offsets, group_metadata, _TIMEOUT_S)

    def commit(self) -> None:
        call(self._producer.commit_transaction, _TIMEOUT_S, commit=True)

    def abort(self) -> None:
        call(self._producer.abort_transaction, _TIMEOUT_S)

    def reset(self) -> None:
        """Drop the producer and start a new one with the same transactional id (fencing)."""
        old, self._producer = self._producer, None
        del old
        self._producer = self._start()
