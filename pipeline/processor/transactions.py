"""The one transactional producer of a process, and how its errors are classified.

Error tree (what the transaction loop does with each)::

    ProducerFault
    ├── AbortableFault   txn_requires_abort(): abort, rewind to committed offsets, drop the overlay
    └── FatalFault       fatal(), a commit that timed out (outcome unknown) or any other
                         non-retriable error: close the producer, start a new one with the same
                         transactional id (init_transactions fences the old), restore, rewind
    ProducerFenced       another producer took this transactional id: the process stops

A fault `implicates_record` when its error code blames what was produced (too large, invalid
record, an argument the client refuses), not the transport, a timeout or the broker's state;
only those count against a record in the loop's cautious mode (see `caution`).
Retriable errors are retried in place (bounded, with backoff) and never leave this module.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final, Protocol, TypeVar

from confluent_kafka import KafkaError, KafkaException, Producer

from pipeline.processor.records import OutboundRecord

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_RETRIES = 20
_TIMEOUT_S = 30.0


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


FENCED_CODES: Final = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED}
)
"""librdkafka raises the fatal `_FENCED` once a newer producer initialised the same
transactional id (it maps the broker's INVALID_PRODUCER_EPOCH to it where that means fencing)."""
RECORD_CODES: Final = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_TIMESTAMP,
        KafkaError._INVALID_ARG,
        KafkaError._BAD_MSG,
    }
)
"""Error codes that blame the produced records themselves (see the module docstring)."""


def fenced_message(transactional_id: object) -> str:
    return (
        f"producer fenced: another processor uses transactional.id {transactional_id!r}; "
        "give each processor a distinct --instance-id (CQRS_PROCESSOR_INSTANCE_ID)"
    )


def classify(
    error: KafkaError, *, commit: bool = False
) -> ProducerFault | ProducerFenced | None:
    """`None` when the call may be retried, else the fault to raise."""
    code = error.code()
    if code in FENCED_CODES:
        return ProducerFenced(str(error))
    implicates = code in RECORD_CODES
    if error.fatal():
        return FatalFault(str(error), implicates_record=implicates)
    if error.txn_requires_abort():
        return AbortableFault(str(error), implicates_record=implicates)
    if commit and code == KafkaError._TIMED_OUT:
        return FatalFault(f"commit outcome unknown: {error}")
    if error.retriable():
        return None
    return FatalFault(str(error), implicates_record=implicates)


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


class ProducerPort(Protocol):
    """What the loop needs of a transactional producer (a fake implements it in unit tests)."""

    def begin(self) -> None: ...
    def produce(self, record: OutboundRecord) -> None: ...
    def send_offsets(self, offsets: list[Any], group_metadata: Any) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...
    def reset(self) -> None: ...


ProducerFactory = Callable[[dict[str, Any]], ProducerPort]


class TransactionalProducer:
    """Owns the confluent-kafka `Producer`; `reset` replaces it, never reuses it after a fault.

    Raises `ProducerFault`s and `ProducerFenced` only (a fenced producer's message names the
    transactional id)."""

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
            except (TypeError, ValueError) as exception:
                # The client refused this record's fields: its fault, and nothing of it was queued.
                raise AbortableFault(str(exception), implicates_record=True) from exception

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
