"""`make_projector_app`: one projector as its own Faust app (group, DLQ, batches, fatal exit)."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, NoReturn, TypeVar, cast

import faust
from aiokafka.errors import (  # type: ignore[import-untyped]
    MessageSizeTooLargeError,
    RecordTooLargeError,
)
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from projections.runtime.errors import TransientError
from projections.runtime.faust_app import ProjectorApp
from projections.runtime.fetches import InFlight
from projections.runtime.health import ProjectorHealth
from projections.runtime.metrics import ProjectorMetrics
from projections.runtime.observe import REFRESH_INTERVAL, Refresher, dlq_depth_reader
from projections.runtime.processor import Backoff, BatchProcessor
from projections.runtime.records import SourceRecord, Store
from topics import Catalogue, KafkaConnection, deadletter

logger = logging.getLogger("projections.runtime")

_T = TypeVar("_T")

EXIT_FATAL = 70
"""Exit status of a projector stopped by an unexpected error (`EX_SOFTWARE`)."""

CHECKPOINT_WAIT_MARGIN = 5.0
"""Seconds kept between giving up the checkpoints read and Faust's own timeout of that step."""


def exit_process(error: BaseException, who: str = "projector") -> NoReturn:
    """Log and leave at once, non-zero (70): a supervisor restarts the process, which resumes
    from where it had durably got (a projector's checkpoint; the managers' group offsets and
    changelogs). Faust's own supervisor would restart the agent with lost state."""
    logger.critical("%s failed, exiting: %s: %s", who, type(error).__name__, error,
                    exc_info=error)
    logging.shutdown()
    os._exit(EXIT_FATAL)


async def finished(batch: Awaitable[_T], grace_s: float) -> _T:
    """Await `batch`; a cancellation (a stop: SIGTERM cancels the agent) lets it finish first,
    for up to `grace_s`, then cancels it, and propagates only once it has ended, so the
    agent's clean-up (the store's close) never runs beside it. A further cancellation while it
    finishes cancels it at once (and still waits for it). An error it ends with during the
    grace is raised instead of the cancellation (the agent's fatal path).

    Cancelled at the await of the store's commit, a batch may be committed with its counts and
    metrics never taken, so the next owner re-reads it as already applied. Finishing it makes a
    stop land between batches, where the store's checkpoints and the counts agree."""
    task = asyncio.ensure_future(batch)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        pass
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    while not task.done():
        left = deadline - loop.time()
        if left <= 0:
            task.cancel()
        try:
            await asyncio.wait({task}, timeout=left if left > 0 else None)
        except asyncio.CancelledError:
            task.cancel()
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error
    raise asyncio.CancelledError


@dataclass(frozen=True)
class BatchOptions:
    """How the consumer feeds the agent: a batch is what one fetch returns, up to `size` records
    (aiokafka's `max_poll_records`), and up to `queued` fetches wait for the agent.

    There is no window: a fetch returns as soon as records are there, so at light load an event
    waits for nothing but the fetch itself, and under load the records fetched while a batch is
    applied make the next one."""

    size: int = 500
    queued: int = 4


PRODUCER_MAX_REQUEST = max(deadletter.RECORD_LIMIT, deadletter.DEAD_LETTER_RECORD_LIMIT + 64 * 1024)
"""The producer's `max_request_size`: a dead letter of `DEAD_LETTER_RECORD_LIMIT` bytes with its
batch overhead fits (Faust's default, 1,000,000, is below the topics' own limit)."""
CONSUMER_MAX_FETCH = 2 * deadletter.RECORD_LIMIT
"""`max_partition_fetch_bytes`: a record of the events topic's largest size comes in one fetch."""


class FaustDeadLetters:
    """`DeadLetters` on the projector's DLQ topic, through the app's producer (acks=all): the
    shared bounded copy (`topics.deadletter.dead_letter`), so a dead letter of any record fits."""

    def __init__(self, topic: Any) -> None:
        self._topic = topic

    async def send(self, record: SourceRecord, error: BaseException) -> None:
        letter = deadletter.dead_letter(topic=record.topic, partition=record.partition,
                             offset=record.offset, key=record.key, value=record.value,
                             headers=record.headers, error=error)
        try:
            await self._publish(letter.key, letter.value, letter.headers)
        except TransientError:
            raise
        except Exception as failed:  # `_publish` lets only a size refusal through
            refused = size_refusal(failed)
            if refused is None:
                raise
            # Cannot happen within the budgets; if it does, the record's own bytes are at
            # fault: publish its source, size and hash alone rather than retry forever.
            logger.error("dead letter refused (%s); publishing its headers alone",
                         type(refused).__name__)
            own = [(n, v) for n, v in letter.headers
                   if n in deadletter.OWN_HEADERS and n != deadletter.TRUNCATED]
            await self._publish(None, None, [*own, (deadletter.TRUNCATED, b"key,value,headers")])

    async def _publish(self, key: bytes | None, value: bytes | None,
                       headers: list[tuple[str, bytes]]) -> None:
        try:
            delivery = await self._topic.send(key=key, value=value, headers=headers)
            await delivery
        except asyncio.CancelledError:
            raise
        except Exception as failed:  # the broker or the producer: retried with backoff
            if size_refusal(failed) is not None:
                raise  # the record's own bytes: `send` publishes its headers alone
            raise TransientError(f"dead letter not published: {type(failed).__name__}: "
                                 f"{failed}") from failed


def size_refusal(error: BaseException) -> BaseException | None:
    """The aiokafka size refusal in `error` or its causes: Faust's `Producer.send` (0.15.3,
    `transport/drivers/aiokafka.py`) re-raises every `KafkaError` of aiokafka's `send` as
    `ProducerSendError(...) from exc`, so the refusal is found on `__cause__`, not as `error`."""
    seen: set[int] = set()
    found: BaseException | None = error
    while found is not None and id(found) not in seen:
        if isinstance(found, MessageSizeTooLargeError | RecordTooLargeError):
            return cast(BaseException, found)
        seen.add(id(found))
        found = found.__cause__
    return None


def partition_counter(kafka: KafkaConnection, topic: str) -> Callable[[], Awaitable[int]]:
    """Reads `topic`'s partition count (what `classify` checks records against)."""
    def count() -> int:
        admin = AdminClient(dict(kafka.client_config()))
        try:
            found = admin.list_topics(topic, timeout=10).topics.get(topic)
        except Exception as error:
            raise TransientError(f"partitions of {topic}: {error}") from error
        if found is None or found.error is not None or not found.partitions:
            raise TransientError(f"topic {topic} not found (run `cqrs topics apply`)")
        return len(found.partitions)

    async def read() -> int:
        return await asyncio.to_thread(count)

    return read


SESSION_TIMEOUT_S = 15.0
"""How long a member killed without leaving its group holds its partitions (Faust's default is
60 s: a SIGKILLed projector instance stopped every instance of its group that long, since the
survivors gave up their partitions to a rebalance that waited for the dead one)."""


def app_settings(kafka: KafkaConnection) -> dict[str, Any]:
    """The Faust settings every app of the project shares (the projectors' and the managers'):
    the broker and its credentials; no web server, no autodiscovery, no leader topic and no
    topic declared (the catalogue makes them); `SESSION_TIMEOUT_S`; a new group reads from the
    beginning; acks from every in-sync replica; records up to the topics' limit each way;
    in-memory tables (restored from their changelogs)."""
    return {
        "broker": f"kafka://{kafka.bootstrap}",
        "broker_credentials": _credentials(kafka),
        "autodiscover": False,
        "web_enabled": False,
        "topic_disable_leader": True,
        "topic_allow_declare": False,
        "broker_session_timeout": SESSION_TIMEOUT_S,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "producer_max_request_size": PRODUCER_MAX_REQUEST,
        "consumer_max_fetch_size": CONSUMER_MAX_FETCH,
        "store": "memory://",
        # Faust creates its data directories at start even with in-memory tables; not in the
        # working directory of whoever runs the app.
        "datadir": os.path.join(tempfile.gettempdir(), "kafka-cqrs.{conf.name}-data"),
    }


def _credentials(kafka: KafkaConnection) -> Any:
    protocol = kafka.security_protocol.upper()
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=kafka.ssl_ca_location)
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=kafka.sasl_username, password=kafka.sasl_password,
            mechanism=kafka.sasl_mechanism or "PLAIN", ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def projector_app(prefix: str, name: str) -> str:
    """Projector `name`'s Faust app id, hence its consumer group: `<prefix>projector.<name>`."""
    return f"{prefix}projector.{name}"


def make_projector_app(
    name: str,
    kafka: KafkaConnection,
    catalogue: Catalogue,
    store: Store,
    *,
    batch: BatchOptions = BatchOptions(),
    backoff: Backoff | None = None,
    checkpoint_wait: float | None = None,
    fatal: Callable[[BaseException], None] = exit_process,
    registry: CollectorRegistry | None = None,
) -> ProjectorApp:
    """A Faust app projecting the catalogue's events topic through `store`, for `faust.Worker`.

    App id and consumer group `<prefix>projector.<name>`; DLQ `<prefix>projection.<name>.dlq`
    (both topics must exist: `topics.apply`). The processor is `app.processor`.
    `backoff` (default `Backoff()`) paces the retries of transient store faults: batches, and
    the parked streams and checkpoints read at start and on every partition assignment alike.
    The checkpoints read (with the store's start) retries for at most `checkpoint_wait` seconds
    (default: Faust's `broker_request_timeout` less `CHECKPOINT_WAIT_MARGIN`), then `fatal`.
    The projector's metrics (`ProjectorMetrics`, `app.metrics`) go on `registry` (default: a
    registry of its own); `app.health` is its liveness and readiness (`observability.serve`
    serves both); a timer refreshes the lag, DLQ depth and parked-streams gauges.
    """
    events = catalogue.events.name
    app = ProjectorApp(projector_app(catalogue.prefix, name), **app_settings(kafka),
                       broker_max_poll_records=batch.size)
    # The events topic is subscribed (the conductor holds it) but no agent reads it: the consumer
    # hands its fetches to the `fetches` channel whole (`projections.runtime.drain`). No acks:
    # the store's checkpoint is the position.
    app.topics.add(app.topic(events, key_type=bytes, value_type=bytes, key_serializer="raw",
                             value_serializer="raw", acks=False))
    app.fetches = app.channel(maxsize=batch.queued)
    app.in_flight = InFlight()
    dlq = app.topic(catalogue.projection_dlq(name).name, key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw")
    metrics = ProjectorMetrics(registry or CollectorRegistry(), catalogue.prefix, name)
    health = ProjectorHealth()
    processor = BatchProcessor(name, store, FaustDeadLetters(dlq), backoff=backoff or Backoff(),
                               partitions=partition_counter(kafka, events), metrics=metrics,
                               health=health)
    refresher = Refresher(processor, events, partial(app.partition_offsets, events),
                          dlq_depth_reader(kafka, catalogue.projection_dlq(name).name))

    # Faust's recovery gives the seek after a rebalance `broker_request_timeout` (90 s) and then
    # stops recovering without a word: the worker lives on but never consumes again. So the
    # checkpoints read retries transient faults until just before that, then exits non-zero
    # (the supervisor restarts the process, which reads them again); it never seeks elsewhere.
    wait = checkpoint_wait
    if wait is None:
        wait = max(1.0, float(app.conf.broker_request_timeout) - CHECKPOINT_WAIT_MARGIN)

    async def checkpoints(topic: str) -> dict[int, int]:
        try:
            return await asyncio.wait_for(processor.checkpoints(topic), timeout=wait)
        except TimeoutError:
            unavailable = TransientError(
                f"checkpoints of {topic} unreadable for {wait:.0f}s (store down?); exiting "
                "before Faust's rebalance timeout would stop consumption silently")
            fatal(unavailable)
            raise unavailable from None
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug: stop, do not go to Faust's crash handling
            fatal(error)
            raise

    async def project(fetches: Any) -> None:
        # Faust's supervisor would restart an agent that raised, with lost state: nothing may
        # escape unhandled.
        try:
            await processor.start()
            async for fetch in fetches:
                if not app.current(fetch):
                    continue  # read before a rebalance: sought again from the checkpoints
                with app.in_flight.batch():
                    await finished(processor.process(fetch.records), wait)
                app.applied(fetch)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            fatal(error)
            raise
        finally:
            await store.close()

    async def finish_batch(_sender: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        # A revocation waits for the batch in flight: the checkpoints it commits must be in the
        # store before the partitions are sought again (here or by their next owner).
        if not await app.in_flight.wait_idle(wait):
            stuck = TransientError(
                f"the batch in flight did not finish within {wait:.0f}s of a rebalance (store "
                "down?); exiting so that the partitions' next owner starts from the checkpoints")
            fatal(stuck)

    app.checkpoint_source = checkpoints
    app.on_partitions_revoked.connect(finish_batch)
    app.agent(app.fetches, name=f"{name}-projector", concurrency=1)(project)
    app.timer(REFRESH_INTERVAL)(refresher.refresh)
    app.processor = processor
    app.metrics = metrics
    app.health = health
    return app
