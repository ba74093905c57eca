"""The Faust side of a projector: a read_committed consumer that seeks to the store's checkpoints.

faust-streaming builds its aiokafka consumer with `isolation_level="read_uncommitted"` unless
`processing_guarantee="exactly_once"` (`AIOKafkaConsumerThread._create_worker_consumer`), and that
mode has open bugs. `ReadCommittedConsumerThread` builds the consumer the same way and switches it
to `read_committed` before it starts (aiokafka hands the level to its fetcher in `start()`), so
records of aborted transactions are never delivered and open ones wait for their commit.

After every rebalance Faust seeks each assigned partition to its committed group offset
(`Consumer.perform_seek` → `seek_to_committed`). `CheckpointConsumer` overrides that step: where
the store holds a checkpoint for a partition it seeks to checkpoint + 1 instead, so the store,
written in the same transaction as the read model, is the truth; Faust's own commits are kept
only so that lag tools see the group's progress. The checkpoint source retries transient store
faults itself (`BatchProcessor.checkpoints`: the store may be down during a rebalance), so this
step waits for the store's answer and never falls back to another position; if the store stays
down until just before Faust's timeout of this step, the source exits the process instead
(`make_projector_app`).

Records reach the agent whole, one item per fetch (`drain.drain_fetches`, `ProjectorApp.fetches`):
no Faust message, ack or gap per record. Faust's periodic commit (and its commit at stop) commits
what the agent reports as applied (`CheckpointConsumer.applied`: each partition's last offset of
a batch the store committed), in bulk, for the lag tools. A revocation waits for the batch in
flight (`ProjectorApp.in_flight`) before the partitions are sought again; fetches still queued
are dropped (Faust clears the agent's queue when flow resumes, and the agent drops a fetch of an
older generation or read while flow was stopped).

For the metrics and health endpoints, `ProjectorApp` marks rebalances
(`ProjectorHealth.rebalancing`, from Faust's `on_rebalance_start` until `on_rebalance_end`,
which Faust calls after the seek) and reads what the consumer knows of each assigned partition
(`partition_offsets`: aiokafka's high watermark and position, and the last offset delivered
since the seek) for the lag gauge.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from projections.runtime.drain import drain_fetches
from projections.runtime.fetches import Fetch, InFlight
from projections.runtime.health import ProjectorHealth
from projections.runtime.lenient import read_header_names_leniently
from projections.runtime.metrics import PartitionOffsets, ProjectorMetrics
from projections.runtime.processor import BatchProcessor

CheckpointSource = Callable[[str], Awaitable[dict[int, int]]]
"""`topic → {partition: last offset accounted for}`, read from the store."""


class ReadCommittedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, reading only committed records, and reading a header
    name that is not UTF-8 instead of crashing (`drain.read_header_names_leniently`)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        read_header_names_leniently()  # before the fetcher starts (projections.runtime.lenient)
        consumer = super()._create_worker_consumer(transport)
        # aiokafka passes this to its Fetcher in start(), which Faust calls after this returns.
        consumer._isolation_level = "read_committed"
        return consumer


def delivered_offset(read_offset: int | None, position: int | None) -> int | None:
    """The last offset handed to the agent since the partition's last seek, from Faust's own
    `_read_offset` (the last offset of each fetch handed over, so nothing is kept twice). After
    a seek Faust sets it to the offset sought (the next to read, not one delivered): a delivered
    offset is always below the consumer's position, so a read offset at the position is none
    delivered yet."""
    if read_offset is None or position is None or read_offset >= position:
        return None
    return read_offset


class CheckpointConsumer(faust_aiokafka.Consumer):
    """Faust's consumer, handing whole fetches to the app (`projections.runtime.drain`),
    committing the positions the agent applied, and seeking to the store's checkpoints after
    each rebalance."""

    _applied: dict[Any, int]

    def _new_consumer_thread(self) -> ReadCommittedConsumerThread:
        return ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:
        app = self.app
        if not isinstance(app, ProjectorApp):
            raise TypeError("CheckpointConsumer runs under a ProjectorApp")
        await drain_fetches(self, fetcher, app.hand_off)

    def _reset_state(self) -> None:
        super()._reset_state()
        self._applied = {}

    def applied(self, last_offsets: Mapping[tuple[str, int], int]) -> None:
        """The store committed these offsets: the group's next commit moves past them."""
        for (topic, partition), offset in last_offsets.items():
            self._applied[TP(topic, partition)] = offset + 1

    # Faust's commit (periodic, and at stop) asks these two for what to commit; with no acks
    # kept, the answer is the applied positions.
    def _filter_tps_with_pending_acks(self, topics: Iterable[Any] | None = None) -> Iterator[Any]:
        wanted = set(topics) if topics is not None else None
        for tp in list(self._applied):
            if wanted is None or tp in wanted or tp.topic in wanted:
                yield tp

    def _new_offset(self, tp: Any) -> int | None:
        return self._applied.get(tp)

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        # Faust's revocation (the app waits there for the batch in flight), then the revoked
        # partitions' last applied positions are committed while they are still assigned.
        await super().on_partitions_revoked(revoked)
        final = {tp: self._applied.pop(tp) for tp in revoked if tp in self._applied}
        if final and not self.app.should_stop:  # stopping: Faust's commit at stop has them
            await self._commit(final)

    async def seek_to_committed(self) -> Mapping[Any, int]:
        positions: dict[Any, int] = dict(await super().seek_to_committed())
        source: CheckpointSource | None = getattr(self.app, "checkpoint_source", None)
        if source is None:
            return positions
        assigned = self.assignment()
        behind: dict[Any, int] = {}
        for topic in {tp.topic for tp in assigned}:
            checkpoints = await source(topic)
            for tp in assigned:
                if tp.topic == topic and tp.partition in checkpoints:
                    next_offset = checkpoints[tp.partition] + 1
                    self._thread.seek(faust_aiokafka.ensure_aiokafka_TP(tp), next_offset)
                    if positions.get(tp) is None or positions[tp] < next_offset:
                        behind[tp] = next_offset
                    positions[tp] = next_offset
        self.log.info("seeked to store checkpoints: %r", positions)
        if behind:
            # The group's offsets catch up with the store (lag tools read them), in the
            # background: aiokafka retries a commit while the coordinator moves, and this step
            # runs under Faust's seek timeout.
            self.add_future(self._commit(behind))
        return positions


class ReadCommittedTransport(faust_aiokafka.Transport):
    Consumer = CheckpointConsumer


class ProjectorApp(faust.App):
    """A Faust app whose consumer reads committed records and seeks to `checkpoint_source`.

    Faust's `Monitor` sensor is not installed: it keeps per-record, per-event and per-commit
    statistics for Faust's web views (off here) at a cost on every record; the projector's own
    counters (`BatchProcessor.counters`) and the group's commits (lag tools) are what it reports.
    """

    checkpoint_source: CheckpointSource | None = None
    processor: BatchProcessor | None = None
    health: ProjectorHealth | None = None
    metrics: ProjectorMetrics | None = None
    fetches: Any = None
    """The bounded channel of `Fetch`es the agent reads (`make_projector_app`)."""
    in_flight: InFlight

    async def hand_off(self, fetch: Fetch) -> None:
        """Queue `fetch` for the agent; waits while the channel is full. A revocation clears
        the channel (Faust's `flow_control.clear`), which cancels a waiting put: that fetch is
        dropped like the ones the channel held (read again from the checkpoints), not an error
        (only a cancellation of this task itself goes on)."""
        try:
            await self.fetches.put(fetch)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise

    def current(self, fetch: Fetch) -> bool:
        """Whether `fetch` may be applied: flow runs and it was read in this generation."""
        return (self.flow_control.is_active()
                and fetch.generation == self.consumer_generation_id)

    def applied(self, fetch: Fetch) -> None:
        """The store committed `fetch`: report its positions to the group's next commit."""
        consumer = getattr(self, "_consumer", None)
        if isinstance(consumer, CheckpointConsumer):
            consumer.applied(fetch.last_offsets)

    def on_rebalance_start(self) -> None:
        super().on_rebalance_start()
        if not self._rebalancing_sensor_state:
            # Faust keeps one state per sensor and warns "Missing sensor state" twice per
            # rebalance when it has none (no sensor is installed here); no sensor reads this.
            self._rebalancing_sensor_state = {None: None}
        if self.health is not None:
            self.health.rebalancing = True
        if self.metrics is not None:
            self.metrics.rebalance()

    def on_rebalance_end(self) -> None:
        super().on_rebalance_end()
        if self.health is not None:
            self.health.assigned = True
            self.health.rebalancing = False

    def partition_offsets(self, topic: str) -> dict[int, PartitionOffsets]:
        """What the consumer knows of each assigned partition of `topic`, read without a
        request: the high watermark aiokafka keeps from its last fetch response, its position
        (next offset it hands over) and the last offset delivered to the agent. aiokafka's
        state lives in the consumer thread; these are plain attribute reads (a value may be one
        fetch old). Empty before the consumer runs."""
        consumer = getattr(self, "_consumer", None)
        kafka = getattr(getattr(consumer, "_thread", None), "_consumer", None)
        if not isinstance(consumer, CheckpointConsumer) or kafka is None:
            return {}
        found: dict[int, PartitionOffsets] = {}
        try:
            assignment = kafka._subscription.subscription.assignment
            for tp in list(kafka.assignment()):
                if tp.topic != topic:
                    continue
                state = assignment.state_value(tp)
                position = state.position if state.has_valid_position else None
                read = consumer._read_offset.get(TP(tp.topic, tp.partition))
                found[tp.partition] = PartitionOffsets(
                    state.highwater, position, delivered_offset(read, position))
        except (AttributeError, AssertionError, RuntimeError):  # between assignments
            return {}
        return found

    def on_init_dependencies(self) -> Any:
        dependencies = super().on_init_dependencies()
        if self.monitor in set(self.sensors):
            self.sensors.remove(self.monitor)
        return dependencies

    def _new_transport(self) -> Any:
        return ReadCommittedTransport(self.conf.broker_consumer, self)


def make_worker(app: faust.App, loglevel: str = "info",
                logging_config: Mapping[str, Any] | None = None) -> faust.Worker:
    """The Faust worker of `app`. Faust (mode) replaces the root logger's handlers with its own
    coloured ones when the worker starts; given `logging_config` (a `logging.config.dictConfig`
    document, the entry point's: `cqrs.logs.logging_config`) it installs that one instead, so
    Faust's, mode's and aiokafka's records are written like every other record. The terminal
    spinner is off then: it writes cursor codes between the lines at levels above info."""
    if logging_config is None:
        return faust.Worker(app, loglevel=loglevel, quiet=True)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True,
                          logging_config=copy.deepcopy(dict(logging_config)))
    worker.spinner = None
    return worker


def run_worker(app: faust.App, loglevel: str = "info",
               logging_config: Mapping[str, Any] | None = None) -> None:
    """Run `app` in a Faust worker until stopped (SIGTERM, SIGINT); blocks (see `make_worker`)."""
    make_worker(app, loglevel, logging_config).execute_from_commandline()
