"""The managers' consumer around Faust's recovery: stream partitions resumed only when the
rebalance has ended, and a partition without a committed offset read again from after the last
record every agent reading it handled (docs/process-managers.md, "A Faust recovery race")."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from faust.types import TP

from projections.managers.app import make_manager_app
from topics import Catalogue, KafkaConnection

CATALOGUE = Catalogue(prefix="t.", partitions=2)
EVENTS = CATALOGUE.events.name
FACTS = CATALOGUE.manager_facts.name
CHANGELOG = CATALOGUE.manager_changelog("orders").name


class FakeConsumerThread:
    """Stands in for the aiokafka consumer thread: an assignment, committed offsets, seeks."""

    def __init__(self, assigned: set[TP], committed: Mapping[TP, int]) -> None:
        self.assigned = assigned
        self.committed = dict(committed)
        self.seeks: dict[tuple[str, int], int] = {}

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return {tp: self.committed.get(tp) for tp in self.assigned}  # type: ignore[misc]

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    def seek(self, partition: Any, offset: int) -> None:
        self.seeks[(partition.topic, partition.partition)] = offset


def run(check: Any) -> None:
    async def inside() -> None:  # Faust binds the app to the running loop
        app = make_manager_app(KafkaConnection(), CATALOGUE)
        consumer: Any = app.consumer
        consumer._thread.thread_loop.close()  # the real thread's loop, never started here
        assigned = {TP(topic, p) for topic in (EVENTS, FACTS, CHANGELOG) for p in (0, 1)}
        consumer._thread = FakeConsumerThread(assigned, committed={TP(EVENTS, 1): 7})
        await check(app, consumer)

    asyncio.run(inside())


def test_stream_partitions_wait_for_the_end_of_the_rebalance() -> None:
    async def check(app: Any, consumer: Any) -> None:
        consumer.pause_partitions(consumer.assignment())
        app.on_rebalance_start()
        consumer.resume_partitions({TP(EVENTS, 0), TP(FACTS, 1), TP(CHANGELOG, 0)})
        assert consumer._get_active_partitions() == {TP(CHANGELOG, 0)}
        app.on_rebalance_end()
        assert consumer._get_active_partitions() == {TP(CHANGELOG, 0), TP(EVENTS, 0),
                                                     TP(FACTS, 1)}
        consumer.resume_partitions({TP(EVENTS, 1)})  # between rebalances: at once
        assert TP(EVENTS, 1) in consumer._get_active_partitions()

    run(check)


def test_uncommitted_partitions_resume_after_what_every_reader_handled() -> None:
    async def check(app: Any, consumer: Any) -> None:
        app.handled.update({("router", EVENTS, 0): 4,
                            ("cancel-on-deactivation", FACTS, 0): 9, ("late-order", FACTS, 0): 6,
                            ("cancel-on-deactivation", FACTS, 1): 2})
        positions = await consumer.seek_to_committed()
        assert positions[TP(EVENTS, 1)] == 7  # committed: Faust's seek stands
        assert consumer._thread.seeks == {
            (EVENTS, 0): 5,   # after the router's last record
            (FACTS, 0): 7,    # after the slower manager's
            (FACTS, 1): 0,    # the late-order manager handled none there
        }                     # changelogs are the recovery's, never sought here

    run(check)
