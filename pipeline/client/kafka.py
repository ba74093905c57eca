"""`CommandClient`: put commands on their stream's partition and wait for their results."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from pipeline.client.commands import stream_id_of
from pipeline.client.errors import (
    DeliveryFailed,
    KafkaUnavailable,
    NotAuthorized,
    ResultTimeout,
    TopicMissing,
)
from topics import (
    CLIENT_LOGGER,
    Catalogue,
    CommandEnvelope,
    CommandResult,
    DecodeError,
    decode_result,
    encode,
    headers_for_command,
    partition_for,
)

logger = logging.getLogger(__name__)

_ELECTING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}
"""Errors a freshly created topic answers for a moment (librdkafka does not flag them retriable)."""
_APPLY_HINT = "run `cqrs topics apply` (with the same CQRS_TOPIC_PREFIX) first"


RESULT_GROUP = "client-"
"""After the topic prefix: the start of every result consumer's group id (`result_group`)."""


def result_group(prefix: str) -> str:
    """A new group id for one client's result consumer: `<prefix>client-<random>`."""
    return f"{prefix}{RESULT_GROUP}{uuid.uuid4().hex}"


class CommandClient:
    """Produces commands keyed by stream id on `partition_for(stream_id, n)`; waits for results.

    Delivery: an idempotent producer (`enable.idempotence`, `acks=all`), so librdkafka's own
    retries never duplicate or reorder a partition's commands. `send` and `send_many` return only
    once every command is acknowledged by all in-sync replicas (one flush per call), or raise
    `DeliveryFailed`: a returned command id is durable. After `DeliveryFailed` a command may or
    may not be written; resend it with the same `command_id`, which the processor answers
    `duplicate` if it got the first. The partition count is read once, at construction.
    Not thread-safe: use one client per thread.
    """

    def __init__(
        self,
        kafka_config: Mapping[str, Any],
        catalogue: Catalogue,
        *,
        metadata_timeout: float = 10.0,
        delivery_timeout: float = 30.0,
    ) -> None:
        # librdkafka's log lines go through Python logging unless the caller chose a logger.
        self._kafka_config = {"logger": logging.getLogger(CLIENT_LOGGER), **kafka_config}
        self._prefix = catalogue.prefix
        self._commands_topic = catalogue.commands.name
        self._results_topic = catalogue.command_results.name
        self._metadata_timeout = metadata_timeout
        self._delivery_timeout = delivery_timeout
        self._producer = Producer(
            {
                **self._kafka_config,
                "enable.idempotence": True,
                "acks": "all",
                # Only for callers producing without an explicit partition: agree with Java.
                "partitioner": "murmur2_random",
                "message.timeout.ms": int(delivery_timeout * 1000),
                "linger.ms": 5,
            }
        )
        self._partitions, self._results_exist = self._read_metadata()
        self._consumer: Consumer | None = None

    @property
    def partitions(self) -> int:
        """The commands topic's partition count, as read at construction."""
        return self._partitions

    def partition_of(self, command: CommandEnvelope) -> int:
        """The partition `command` is written to (and its result is read from)."""
        return partition_for(stream_id_of(command), self._partitions)

    def send(self, command: CommandEnvelope) -> str:
        """Write one command and wait for its acknowledgement; returns its command id."""
        return self.send_many([command])[0]

    def send_many(self, commands: Iterable[CommandEnvelope]) -> list[str]:
        """Write every command, then flush once; returns their ids in order.

        Every stream id is computed before anything is produced, so an unknown type sends
        nothing. Commands of one stream keep their order (same partition, idempotent producer).
        """
        batch = [(command, stream_id_of(command)) for command in commands]
        outcomes: list[str | None] = [None] * len(batch)
        for index, (command, stream_id) in enumerate(batch):
            self._produce(command, stream_id, outcomes, index)
        self._producer.flush(self._delivery_timeout + 5.0)
        failed = {
            command.command_id: outcome or f"not acknowledged within {self._delivery_timeout:g}s"
            for (command, _), outcome in zip(batch, outcomes, strict=True)
            if outcome != "ok"
        }
        sent = [command.command_id for (command, _), out in zip(batch, outcomes, strict=True)
                if out == "ok"]
        if failed:
            first_id, first_error = next(iter(failed.items()))
            raise DeliveryFailed(
                f"{len(failed)} of {len(batch)} command(s) not written to {self._commands_topic} "
                f"(first: {first_id}: {first_error}); resend them with the same command ids",
                failed,
                sent,
            )
        return sent

    def send_and_wait(self, command: CommandEnvelope, timeout: float) -> CommandResult:
        """Send `command` and return its result; raises `ResultTimeout` after `timeout` seconds."""
        return self.send_many_and_wait([command], timeout)[0]

    def send_many_and_wait(
        self, commands: Iterable[CommandEnvelope], timeout: float
    ) -> list[CommandResult]:
        """Send `commands` (one flush) and return their results in the same order.

        The result partitions are assigned at their end offsets *before* anything is produced,
        so no result can slip past; only committed results are read (`read_committed`).
        `timeout` counts from the acknowledgement of the commands. On timeout, `ResultTimeout`
        carries the results that arrived and the ids still pending; the commands stay written.
        """
        batch = list(commands)
        starts = self._assign_result_partitions({self.partition_of(c) for c in batch})
        self.send_many(batch)
        found = self._collect({c.command_id for c in batch}, starts, timeout)
        return [found[command.command_id] for command in batch]

    def close(self) -> None:
        """Close the result consumer and the producer (which flushes anything still queued)."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self._producer.flush(self._delivery_timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _read_metadata(self) -> tuple[int, bool]:
        try:
            metadata = self._producer.list_topics(timeout=self._metadata_timeout)
        except KafkaException as error:
            raise KafkaUnavailable(
                f"no Kafka broker answered at {self._kafka_config.get('bootstrap.servers')!r} "
                f"within {self._metadata_timeout:g}s: {error.args[0]}"
            ) from None
        commands = metadata.topics.get(self._commands_topic)
        if commands is None or commands.error is not None or not commands.partitions:
            # A topic the principal may not describe is left out of a full listing: asked for
            # by name, the broker says whether it is missing or refused (ACLs).
            self._refused(self._commands_topic, "write commands to")
            raise TopicMissing(f"topic {self._commands_topic!r} does not exist: {_APPLY_HINT}")
        results = metadata.topics.get(self._results_topic)
        results_exist = results is not None and results.error is None
        if not results_exist:
            self._refused(self._results_topic, "read results from")
        return len(commands.partitions), results_exist

    def _refused(self, topic: str, what: str) -> None:
        """Raise `NotAuthorized` if the broker refuses this principal `topic`."""
        try:
            found = self._producer.list_topics(topic, timeout=self._metadata_timeout)
        except KafkaException:
            return
        error = found.topics[topic].error if topic in found.topics else None
        if error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            user = self._kafka_config.get("sasl.username") or "this client"
            raise NotAuthorized(
                f"{user} may not {what} topic {topic!r} ({error.name()}: {error.str()}); the "
                "admin grants each role its rights with `cqrs access apply`")

    def _produce(
        self, command: CommandEnvelope, stream_id: str, outcomes: list[str | None], index: int
    ) -> None:
        def on_delivery(error: Any, message: Message) -> None:
            outcomes[index] = "ok" if error is None else str(error)

        partition = partition_for(stream_id, self._partitions)
        headers: list[tuple[str, str | bytes | None]] = [
            *headers_for_command(command, stream_id)
        ]
        while True:
            try:
                self._producer.produce(
                    self._commands_topic,
                    key=stream_id.encode(),
                    value=encode(command),
                    partition=partition,
                    headers=headers,
                    on_delivery=on_delivery,
                )
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                self._producer.poll(0.1)
        logger.debug(
            "command produced command_id=%s stream_id=%s type=%s partition=%d",
            command.command_id, stream_id, command.type, partition,
        )

    def _result_consumer(self) -> Consumer:
        if not self._results_exist:
            raise TopicMissing(f"topic {self._results_topic!r} does not exist: {_APPLY_HINT}")
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    **self._kafka_config,
                    # Required by librdkafka; never joined or committed (we only assign), but
                    # its coordinator is looked up: named under the prefix (`result_group`), so
                    # that an ACL on `<prefix>client-` allows it.
                    "group.id": result_group(self._prefix),
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed",
                    "auto.offset.reset": "latest",
                }
            )
        return self._consumer

    def _assign_result_partitions(self, partitions: set[int]) -> dict[int, int]:
        consumer = self._result_consumer()
        starts = {}
        for partition in sorted(partitions):
            starts[partition] = self._end_offset(consumer, partition)
        consumer.assign(
            [TopicPartition(self._results_topic, p, offset) for p, offset in starts.items()]
        )
        return starts

    def _end_offset(self, consumer: Consumer, partition: int) -> int:
        """The partition's end offset, retrying retriable errors (a leader still being elected
        just after the topic was created answers NOT_LEADER_FOR_PARTITION) until the timeout."""
        position = TopicPartition(self._results_topic, partition)
        deadline = time.monotonic() + self._metadata_timeout
        while True:
            try:
                _, end = consumer.get_watermark_offsets(position, timeout=self._metadata_timeout)
                return int(end)
            except KafkaException as error:
                kafka_error = error.args[0]
                retry = kafka_error.retriable() or kafka_error.code() in _ELECTING
                if not retry or time.monotonic() >= deadline:
                    raise KafkaUnavailable(
                        f"cannot read the end of {self._results_topic}[{partition}]: {kafka_error}"
                    ) from None
                time.sleep(0.1)

    def _collect(
        self, pending: set[str], starts: Mapping[int, int], timeout: float
    ) -> dict[str, CommandResult]:
        consumer = self._result_consumer()
        found: dict[str, CommandResult] = {}
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timeout(sorted(pending), found, timeout)
            message = consumer.poll(min(left, 0.5))
            result = self._result_in(message, starts) if message is not None else None
            if result is not None and result.command_id in pending:
                pending.discard(result.command_id)
                found[result.command_id] = result
        return found

    def _result_in(self, message: Message, starts: Mapping[int, int]) -> CommandResult | None:
        if message.error() is not None:
            logger.warning("result consumer error=%s", message.error())
            return None
        # A record fetched for an earlier assignment of the same partition is not ours.
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None or offset < starts.get(partition, 0):
            return None
        try:
            return decode_result(message.value() or b"")
        except DecodeError as error:
            logger.warning(
                "undecodable result partition=%d offset=%d error=%s",
                partition, offset, error,
            )
            return None

    def _timeout(
        self, pending: Sequence[str], found: Mapping[str, CommandResult], timeout: float
    ) -> ResultTimeout:
        return ResultTimeout(
            f"no result for {len(pending)} command(s) (first: {pending[0]}) on "
            f"{self._results_topic} within {timeout:g}s: is `cqrs processor` running and "
            f"consuming {self._commands_topic}? The commands were written; wait again or resend "
            "them with the same command ids (a repeat is answered `duplicate`).",
            pending,
            found,
        )
