"""A partition revoked and assigned again while a batch is collected (two cooperative rebalances
within one `collect`): the records read before the revocation are read again from the committed
offset, and no command may be decided twice."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

from pipeline.processor import Processor, ProcessorConfig, TopicNames
from pipeline.processor.memory import MemoryBroker, drain
from pipeline.processor.memory_readers import MemoryCommandSource
from pipeline.processor.records import InboundRecord
from tests.support.processor import command
from topics import read_headers

TOPICS = TopicNames("c", "e", "a", "r", "dlq")
CONFIG = ProcessorConfig(kafka={}, topics=TOPICS, prefix="t.", instance_id="t",
                         batch_size=50, batch_ms=1000, batch_idle_ms=50)


class Flapping(MemoryCommandSource):
    """Hands out two records a call; at its `flap_at`-th call, its partitions are taken away
    and given back before it reads (the group's generation moves on twice)."""

    def __init__(self, broker: MemoryBroker, flap_at: int) -> None:
        super().__init__(broker, TOPICS.commands)
        self.calls, self.flap_at = 0, flap_at

    def consume(self, num_messages: int, timeout: float) -> list[InboundRecord]:
        self.calls += 1
        if self.calls == self.flap_at:
            owned = self.assignment()
            self.reassign([])
            self.reassign(owned)
        return super().consume(min(num_messages, 2), timeout)


def create(i: int) -> bytes:
    return json.dumps(command("CreateUser", f"u{i}", {"email": f"u{i}@example.com",
                                                      "name": f"User {i}"}, f"c{i}")).encode()


def test_a_partition_back_within_one_batch_decides_each_command_once() -> None:
    broker = MemoryBroker.for_config(CONFIG, 1)
    for i in range(6):
        broker.append("c", 0, b"k", create(i))
    source = Flapping(broker, flap_at=2)
    processor = Processor(CONFIG, dataclasses.replace(broker.ports(CONFIG), commands=source))
    processor.start()
    drain(processor, broker)
    processor.close()
    assert source.calls > 2  # the flap happened inside a batch
    answers = Counter((read_headers(list(r.headers))["command_id"],
                       read_headers(list(r.headers))["status"]) for r in broker.records("r"))
    assert answers == Counter({(f"c{i}", "accepted"): 1 for i in range(6)})
    assert len(broker.records("e")) == 6
