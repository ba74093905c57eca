"""How a batch is collected: full under a backlog, closed early once the queue drains."""

from __future__ import annotations

from pipeline.processor.batching import collect


class FakeConsumer:
    """A consumer whose queue receives `arrivals[t]` messages at fake time `t` (seconds)."""

    def __init__(self, arrivals: dict[float, int]) -> None:
        self.now = 0.0
        self.arrivals = dict(arrivals)
        self.queue: list[int] = []
        self.taken = 0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def _arrive(self, until: float) -> None:
        for moment in sorted(self.arrivals):
            if moment <= until:
                start = len(self.queue) + self.taken
                self.queue.extend(range(start, start + self.arrivals.pop(moment)))

    def _wait(self, count: int, timeout: float) -> list[int]:
        self.waits.append(timeout)
        self._arrive(self.now)
        if len(self.queue) < count:
            self.now += timeout
            self._arrive(self.now)
        taken, self.queue = self.queue[:count], self.queue[count:]
        self.taken += len(taken)
        return taken

    def consume(self, num_messages: int, timeout: float) -> list[int]:
        return self._wait(num_messages, timeout)

    def poll(self, timeout: float) -> int | None:
        self._arrive(self.now)
        if not self.queue:
            pending = [moment for moment in self.arrivals if moment <= self.now + timeout]
            self.now = min(pending) if pending else self.now + timeout
        got = self._wait(1, 0)
        return got[0] if got else None


def test_a_backlog_fills_the_batch() -> None:
    consumer = FakeConsumer({0.0: 2000})
    assert len(collect(consumer, 500, 100, 5, consumer.clock)) == 500
    assert consumer.now == 0.0


def test_a_drained_queue_closes_the_batch_after_the_idle_wait() -> None:
    consumer = FakeConsumer({0.0: 3, 0.002: 4})
    batch = collect(consumer, 500, 100, 5, consumer.clock)
    assert batch == list(range(7))
    assert consumer.now < 0.100
    assert consumer.waits[-1] == 0.005


def test_the_first_command_is_waited_for_up_to_batch_ms() -> None:
    consumer = FakeConsumer({0.040: 1})
    assert collect(consumer, 500, 100, 5, consumer.clock) == [0]
    assert round(consumer.now, 3) == 0.045


def test_nothing_within_batch_ms_is_an_empty_batch() -> None:
    consumer = FakeConsumer({})
    assert collect(consumer, 500, 100, 5, consumer.clock) == []
    assert round(consumer.now, 3) == 0.100


def test_steady_light_arrivals_close_the_batch_after_one_idle_wait() -> None:
    consumer = FakeConsumer({index / 1000: 1 for index in range(300)})
    batch = collect(consumer, 500, 100, 5, consumer.clock)
    assert 5 <= len(batch) <= 7
    assert consumer.now <= 0.006


def test_a_backlog_fetched_in_parts_still_fills_the_batch() -> None:
    consumer = FakeConsumer({0.0: 300, 0.001: 300})
    assert len(collect(consumer, 500, 100, 5, consumer.clock)) == 500
