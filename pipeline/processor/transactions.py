"""The Kafka transactional sink: one confluent-kafka producer per process, its errors classified
into the fault tree of `faults` (retriable errors are retried in place, bounded, with backoff, and
never leave this module). A fault `implicates_record` for the codes of `RECORD_CODES`.

`send_offsets_to_transaction` is bounded here, not only by its own timeout: librdkafka (2.16)
can block in it forever once the group coordinator died or moved (its coordinator request
never times out, librdkafka#5456; a coordinator that left the metadata is never asked again,
#5511), and a processor stuck there answers nothing, not even SIGTERM. Ten seconds past its
timeout the call is a `FatalFault`: the producer is replaced (fencing the stuck one) and left to
its thread.

The blocking calls wait at least `_TIMEOUT_S`, and longer than `transaction.timeout.ms` (which
is also `message.timeout.ms`): a commit flushes the batch's records first, and a record may wait
up to that long for a partition's new leader after a broker's loss.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from pipeline.processor.faults import (
    AbortableFault,
    FatalFault,
    ProducerFault,
    ProducerFenced,
    fenced_message,
)
from pipeline.processor.ports import ProducerFactory, ProducerPort, TopicPosition
from pipeline.processor.records import OutboundRecord

__all__ = [
    "AbortableFault",
    "FatalFault",
    "ProducerFactory",
    "ProducerFault",
    "ProducerFenced",
    "ProducerPort",
    "TransactionalProducer",
    "call",
    "classify",
    "fenced_message",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_RETRIES = 20
_TIMEOUT_S = 30.0
_BOUND_MARGIN_S = 10.0
"""How long past its own timeout a call librdkafka may never return from is waited for."""


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


def bounded(operation: Callable[..., _T], seconds: float) -> Callable[..., _T]:
    """`operation`, run in a thread of its own and given up after `seconds` (a `FatalFault`;
    the thread is left to finish or block, holding the abandoned producer). What it raises is
    raised here."""
    name = getattr(operation, "__name__", "operation")

    def run(*args: Any) -> _T:
        outcome: list[Any] = []

        def target() -> None:
            try:
                outcome.append((True, operation(*args)))
            except BaseException as error:
                outcome.append((False, error))

        thread = threading.Thread(target=target, name=f"bounded-{name}", daemon=True)
        thread.start()
        thread.join(seconds)
        if not outcome:
            raise FatalFault(f"{name} did not return within {seconds:.0f}s (a librdkafka hang "
                             "on a lost coordinator): the producer is replaced")
        returned, value = outcome[0]
        if not returned:
            raise value
        result: _T = value
        return result

    run.__name__ = name
    return run


class TransactionalProducer:
    """Owns the confluent-kafka `Producer`; `reset` replaces it, never reuses it after a fault.

    Raises `ProducerFault`s and `ProducerFenced` only (a fenced producer's message names the
    transactional id)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        transaction_s = float(config.get("transaction.timeout.ms", 0)) / 1000
        self._timeout_s = max(_TIMEOUT_S, transaction_s + 5.0)
        self._producer = self._start()

    def _start(self) -> Any:
        producer = Producer(self._config)
        call(producer.init_transactions, self._timeout_s)
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

    def send_offsets(self, offsets: list[TopicPosition], group_metadata: Any) -> None:
        positions = [TopicPartition(o.topic, o.partition, o.offset) for o in offsets]
        send = bounded(self._producer.send_offsets_to_transaction,
                       self._timeout_s + _BOUND_MARGIN_S)
        call(send, positions, group_metadata, self._timeout_s)

    def commit(self) -> None:
        call(self._producer.commit_transaction, self._timeout_s, commit=True)

    def abort(self) -> None:
        call(self._producer.abort_transaction, self._timeout_s)

    def reset(self) -> None:
        """Drop the producer and start a new one with the same transactional id (fencing)."""
        old, self._producer = self._producer, None
        del old
        self._producer = self._start()
