"""The managers' Faust app: a router agent and one agent per manager, their state in tables.

One app, one consumer group (`<prefix>managers`), one process (`cqrs manage`):

- agent `router` reads the events topic (read_committed, the projectors' consumer thread), keeps
  order stream → customer in table `orders`, and forwards facts to the facts topic, keyed and
  partitioned by customer (`partition_for(customer)`): the explicit repartition;
- agents `cancel-on-deactivation` and `late-order` both read the facts topic; each keeps its
  customers' state in its own table (key = customer stream id, value = JSON `CustomerState`) and
  sends its `CancelOrder`s to the commands topic.

Tables live in memory and are restored from their changelog topics (`<prefix>managers.
<table>.changelog`, compacted) at every assignment; a table's changelog record goes to the
partition of the record being processed, so with every topic of the app co-partitioned (the
catalogue gives them all its partition count) a member owns a customer's facts and state
together. The topics are the catalogue's (`cqrs topics apply` creates them; Faust declares none).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from prometheus_client import CollectorRegistry

from projections.managers.commands import OutgoingCommand
from projections.managers.decide import MANAGERS
from projections.managers.facts import Fact, encode_fact
from projections.managers.handling import ManagerStage, RouterStage, Stage
from projections.managers.metrics import ManagerMetrics
from projections.managers.state import decode_state
from projections.runtime.app import (
    FaustDeadLetters,
    app_settings,
    partition_counter,
)
from projections.runtime.app import exit_process as runtime_exit
from projections.runtime.errors import TransientError
from projections.runtime.faust_app import ReadCommittedConsumerThread
from projections.runtime.health import ProjectorHealth
from projections.runtime.processor import Backoff
from projections.runtime.records import SourceRecord
from topics import Catalogue, KafkaConnection

logger = logging.getLogger("projections.managers")

NAME = "managers"
TOTALS_INTERVAL = 5.0
"""Seconds between two `totals` log lines of a stage (only when its counts moved)."""
GAUGES_INTERVAL = 15.0
"""Seconds between two counts of the tables' customers and open orders (the gauges)."""


def exit_process(error: BaseException) -> NoReturn:
    """`projections.runtime.exit_process`, naming the managers."""
    runtime_exit(error, "managers")


class ReadCommittedConsumer(faust_aiokafka.Consumer):
    """Faust's consumer with the projectors' read_committed, lenient consumer thread, and stream
    partitions resumed only once a rebalance has ended.

    faust-streaming 0.15.3 resumes the stream partitions after a table recovery while flow is
    already on, seeks them to their committed offsets, and only then resumes the app's flow
    control, which clears every agent's queue (`Recovery.on_recovery_completed`). Records fetched
    in that window were dropped from the queues behind the consumer's position; where the group
    had no committed offset (a new group, a member killed before its first commit) nothing sought
    back, and the router stopped short of events already in the log until the next rebalance
    (seen in tests/integration/test_managers.py). Here the stream partitions' resumption is held
    from the start of a rebalance until its end (`hold_streams`, `release_streams`, after Faust
    cleared the queues), and a stream partition without a committed offset is sought to just
    after the last record every agent reading it handled (`ManagerApp.resume_offset`; 0 when
    one handled none), not left where records cleared from a queue had moved the position."""

    _held: set[Any] | None = None

    def _new_consumer_thread(self) -> ReadCommittedConsumerThread:
        return ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _streams(self) -> frozenset[str]:
        topics: frozenset[str] = getattr(self.app, "stream_topics", frozenset())
        return topics

    def hold_streams(self) -> None:
        """From now on, resuming a stream partition waits for `release_streams`."""
        if self._held is None:
            self._held = set()

    def release_streams(self) -> None:
        """Resume the stream partitions held, those still assigned."""
        held, self._held = self._held or set(), None
        assigned = set(self.assignment())
        if held & assigned:
            super().resume_partitions(held & assigned)

    def resume_partitions(self, tps: Any) -> None:
        wanted = set(tps)
        if self._held is not None:
            streams = {tp for tp in wanted if tp.topic in self._streams()}
            self._held |= streams
            wanted -= streams
        super().resume_partitions(wanted)

    async def seek_to_committed(self) -> Mapping[Any, int]:
        positions: dict[Any, int] = dict(await super().seek_to_committed())
        resume_at: Callable[[str, int], int] = getattr(self.app, "resume_offset",
                                                       lambda topic, partition: 0)
        for tp in self.assignment():
            if tp.topic in self._streams() and positions.get(tp) is None:
                # No committed offset: after the last record every agent of the topic handled
                # (0 if one has handled none; before the log start, the reset policy applies).
                self._thread.seek(faust_aiokafka.ensure_aiokafka_TP(tp),
                                  resume_at(tp.topic, tp.partition))
        return positions


class ReadCommittedTransport(faust_aiokafka.Transport):
    Consumer = ReadCommittedConsumer


class ManagerApp(faust.App):
    """The managers' app: its stages (`router`, then one per manager), health and metrics."""

    stages: dict[str, Stage]
    health: ProjectorHealth
    metrics: ManagerMetrics

    def _manager_consumer(self) -> ReadCommittedConsumer | None:
        consumer = getattr(self, "_consumer", None)
        return consumer if isinstance(consumer, ReadCommittedConsumer) else None

    def on_rebalance_start(self) -> None:
        super().on_rebalance_start()
        if not self._rebalancing_sensor_state:
            self._rebalancing_sensor_state = {None: None}  # as ProjectorApp: no warning
        self.health.rebalancing = True
        consumer = self._manager_consumer()
        if consumer is not None:
            consumer.hold_streams()

    stream_topics: frozenset[str] = frozenset()
    """The topics the agents read (events, facts), as opposed to the tables' changelogs."""
    readers: dict[str, tuple[str, ...]]
    """Topic → the stages (agents) that read it."""
    handled: dict[tuple[str, str, int], int]
    """(stage, topic, partition) → offset of the last record that stage handled."""

    def resume_offset(self, topic: str, partition: int) -> int:
        """Where to read `topic`'s `partition` from when the group committed nothing there: after
        the last record that every agent reading it handled, 0 when one has handled none."""
        offsets = [self.handled.get((stage, topic, partition)) for stage in
                   self.readers.get(topic, ())]
        if not offsets or any(offset is None for offset in offsets):
            return 0
        return min(offset for offset in offsets if offset is not None) + 1

    def on_rebalance_end(self) -> None:
        super().on_rebalance_end()
        self.health.assigned = True
        self.health.rebalancing = False
        consumer = self._manager_consumer()
        if consumer is not None:  # Faust has sought and cleared the queues: fetch from there
            consumer.release_streams()

    def _new_transport(self) -> Any:
        return ReadCommittedTransport(self.conf.broker_consumer, self)


def source_record(message: Any) -> SourceRecord:
    """A Faust message as the stages read it (a header without value reads as empty)."""
    headers = tuple((str(name), bytes(value or b"")) for name, value in message.headers or ())
    return SourceRecord(message.topic, message.partition, message.offset, message.key,
                        message.value, headers)


def _raw_topic(app: faust.App, name: str, **options: Any) -> Any:
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw", allow_empty=True, **options)


def make_manager_app(
    kafka: KafkaConnection,
    catalogue: Catalogue,
    *,
    registry: CollectorRegistry | None = None,
    backoff: Backoff | None = None,
    fatal: Callable[[BaseException], None] = exit_process,
) -> ManagerApp:
    """The managers' Faust app for `faust.Worker` (`projections.runtime.run_worker`)."""
    partitions = catalogue.partitions
    app = ManagerApp(f"{catalogue.prefix}{NAME}", **app_settings(kafka),
                     table_standby_replicas=0)
    app.health = ProjectorHealth()
    app.metrics = metrics = ManagerMetrics(registry or CollectorRegistry(), catalogue.prefix)
    events = _raw_topic(app, catalogue.events.name)
    facts = _raw_topic(app, catalogue.manager_facts.name, partitions=partitions)
    app.stream_topics = frozenset({catalogue.events.name, catalogue.manager_facts.name})
    app.readers = {catalogue.events.name: ("router",), catalogue.manager_facts.name: MANAGERS}
    app.handled = {}
    commands = _raw_topic(app, catalogue.commands.name)
    dead_letters = FaustDeadLetters(_raw_topic(app, catalogue.manager_dlq.name))
    count = partition_counter(kafka, catalogue.events.name)
    pacing = backoff or Backoff()

    def fact_failed(sent: Any) -> bool:
        if not sent.cancelled() and sent.exception() is not None:
            # Delivery failed after the producer's own retries: stop before the group commits
            # past the event (Faust flushes the producer before each commit).
            fatal(sent.exception())
            return True
        return False

    def table(name: str) -> Any:
        changelog = _raw_topic(app, catalogue.manager_changelog(name).name,
                               partitions=partitions)
        made: Any = app.Table(name, key_type=bytes, value_type=bytes, partitions=partitions,
                              changelog_topic=changelog)
        on_sent = made._on_changelog_sent

        def changelog_sent(sent: Any) -> None:
            # Faust only logs a changelog write that failed, and commits past it: the state
            # would silently roll back at the next restore. A failed write stops the process
            # instead, before the commit (found in review).
            if not fact_failed(sent):
                on_sent(sent)

        made._on_changelog_sent = changelog_sent
        return made

    async def forward(fact: Fact, partition: int) -> None:
        try:
            sent = await facts.send(key=fact.customer.encode(), value=encode_fact(fact),
                                    partition=partition)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise TransientError(f"fact not sent: {type(error).__name__}: {error}") from error
        sent.add_done_callback(fact_failed)

    async def send_command(outgoing: OutgoingCommand) -> None:
        try:
            delivery = await commands.send(key=outgoing.key, value=outgoing.value,
                                           partition=outgoing.partition,
                                           headers=outgoing.headers)
            await delivery  # acknowledged (acks=all) before the state is written
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise TransientError(f"command not sent: {type(error).__name__}: {error}") from error

    tables = {name: table(name) for name in ("orders", *MANAGERS)}
    app.stages = {"router": RouterStage(tables["orders"], forward, dead_letters, count, metrics,
                                        pacing)}
    for name in MANAGERS:
        app.stages[name] = ManagerStage(name, tables[name], send_command, dead_letters, count,
                                        metrics, pacing)

    def agent_of(stage: Stage) -> Callable[[Any], Any]:
        async def consume(stream: Any) -> None:
            # Faust's supervisor would restart an agent that raised, with lost state: nothing
            # may escape unhandled (a record's content never raises out of `handle`).
            try:
                app.health.store_started = True
                async for event in stream.events():
                    message = event.message
                    await stage.handle(source_record(message))
                    app.handled[(stage.name, message.topic, message.partition)] = message.offset
            except asyncio.CancelledError:
                raise
            except Exception as error:
                fatal(error)
                raise
        return consume

    app.agent(events, name="router")(agent_of(app.stages["router"]))
    for name in MANAGERS:
        app.agent(facts, name=name)(agent_of(app.stages[name]))

    logged: dict[str, dict[str, int]] = {}

    async def log_totals() -> None:
        app.health.idle_beat()
        for name, stage in app.stages.items():
            totals = stage.counters.snapshot()
            if logged.get(name) != totals:
                logged[name] = totals
                logger.info("totals", extra={"stage": name, "totals": totals})

    async def count_tables() -> None:
        for name in MANAGERS:
            states = list(tables[name].values())
            open_orders = 0
            for raw in states:
                try:
                    open_orders += len(decode_state(raw).open_orders())
                except ValueError:
                    continue
            metrics.tables(name, len(states), open_orders)

    app.timer(TOTALS_INTERVAL)(log_totals)
    app.timer(GAUGES_INTERVAL)(count_tables)
    return app
