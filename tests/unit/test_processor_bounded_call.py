"""`transactions.bounded`: a producer call librdkafka may never return from is given up on as a
`FatalFault` (the loop then replaces the producer); a call that returns or raises is unchanged."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from pipeline.processor.transactions import FatalFault, bounded, call


def test_a_call_that_never_returns_is_a_fatal_fault_after_the_bound() -> None:
    release = threading.Event()

    def send_offsets_to_transaction(*args: object) -> None:
        release.wait(10)

    started = time.monotonic()
    with pytest.raises(FatalFault, match="send_offsets_to_transaction did not return"):
        call(bounded(send_offsets_to_transaction, 0.2), [], None, 30.0)
    assert time.monotonic() - started < 2
    release.set()


def test_a_returned_value_and_a_raised_error_pass_through() -> None:
    assert bounded(lambda value: value * 2, 5)(21) == 42
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "transport", retriable=True))
        return "sent"

    assert call(bounded(flaky, 5)) == "sent"
    assert len(attempts) == 2
