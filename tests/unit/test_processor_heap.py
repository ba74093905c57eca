"""The restored states are frozen out of the cyclic collector's scans, after every restore."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime

import pytest

from pipeline.processor import ProcessorConfig, TopicNames, heap, loop
from pipeline.processor.memory import Fault, MemoryBroker, drain
from pipeline.processor.restore import Restored

TOPICS = TopicNames("c", "e", "a", "r", "dlq")
CONFIG = ProcessorConfig(kafka={}, topics=TOPICS, prefix="t.", batch_ms=1, batch_idle_ms=0)
NOW = datetime(2024, 5, 1, tzinfo=UTC)


def create(i: int) -> bytes:
    return json.dumps({
        "command_id": f"c{i}", "type": "CreateUser", "aggregate_id": f"u{i}",
        "data": {"email": f"u{i}@example.com", "name": f"User {i}"},
        "issued_at": "2024-05-01T00:00:00Z",
    }).encode()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What happened, in order: restores, collections and freezes."""
    happened: list[str] = []
    real_restore, real_collect, real_freeze = loop.restore, gc.collect, gc.freeze

    def restore(*args: object, **kwargs: object) -> dict[int, Restored]:
        happened.append("restore" if not gc.isenabled() else "restore while collecting")
        return real_restore(*args, **kwargs)  # type: ignore[arg-type]

    def collect(*args: int) -> int:
        happened.append("collect")
        return real_collect(*args)

    def freeze() -> None:
        happened.append("freeze")
        real_freeze()

    monkeypatch.setattr(loop, "restore", restore)
    monkeypatch.setattr(gc, "collect", collect)
    monkeypatch.setattr(gc, "freeze", freeze)
    return happened


def test_the_heap_is_collected_then_frozen_after_the_assignment_is_restored(
    calls: list[str],
) -> None:
    broker = MemoryBroker.for_config(CONFIG, 2)
    broker.append("c", 0, b"k", create(1))
    processor = broker.processor(CONFIG, lambda: NOW)
    processor.start()
    assert calls == []
    drain(processor, broker)
    assert calls == ["restore", "collect", "freeze"]  # no automatic collection while restoring
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    processor.close()


def test_a_restore_after_a_producer_restart_is_frozen_too(calls: list[str]) -> None:
    broker = MemoryBroker.for_config(CONFIG, 1)
    broker.append("c", 0, b"k", create(1))
    broker.inject(Fault("fatal", "commit"))
    processor = broker.processor(CONFIG, lambda: NOW)
    processor.start()
    drain(processor, broker)
    assert processor.counters.producer_restarts == 1
    assert calls == ["restore", "collect", "freeze"] * 2
    processor.close()


def test_tune_sets_the_young_threshold_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    monkeypatch.setattr(gc, "set_threshold", lambda *values: calls.append(values))
    heap.tune(None)
    assert calls == []
    heap.tune(12_345)
    assert calls == [(12_345, *gc.get_threshold()[1:])]


def test_a_young_threshold_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="gc_young_threshold"):
        ProcessorConfig(kafka={}, topics=TOPICS, gc_young_threshold=0)


def test_paused_leaves_the_collector_as_it_found_it() -> None:
    seen: list[bool] = []

    def timed_out_restore() -> None:
        with heap.paused():
            seen.append(gc.isenabled())
            raise RuntimeError("a restore that times out")

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        timed_out_restore()
    assert seen == [False]
    assert gc.isenabled()
    gc.disable()
    try:
        with heap.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
