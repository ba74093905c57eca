"""`spill.BoundedStateStore`: at most `resident` states in memory, the others in its file, every
one read back as it was; a restore through `staging` is bounded the same way."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pipeline.domain.users import UserState
from pipeline.processor import ProcessorConfig, TopicNames
from pipeline.processor.memory import MemoryBroker, drain
from pipeline.processor.spill import BoundedStateStore
from pipeline.processor.state import StateUnavailable, StreamState


def user(n: int, version: int = 1) -> StreamState:
    state = UserState(email=f"u{n}@example.com", name=f"User {n}", active=True)
    return StreamState(f"user-u{n}", "user", version, state, (f"c{n}-{version}",))


def resident(store: BoundedStateStore) -> int:
    return store.stream_count() - store.spilled.count()


@pytest.fixture
def store(tmp_path: Path) -> BoundedStateStore:
    found = BoundedStateStore(2, spill_directory=tmp_path)
    yield found
    found.close()


def test_states_past_the_bound_go_to_the_file_and_come_back_as_they_were(
        store: BoundedStateStore) -> None:
    store.load(0, {f"user-u{n}": user(n) for n in range(5)})
    assert resident(store) == 2
    assert store.spilled.count(0) == 3
    for n in range(5):
        assert store.get(0, f"user-u{n}") == user(n)
        assert resident(store) == 2
    assert store.stream_count() == 5
    assert store.get(0, "user-nobody") is None
    assert store.get(1, "user-u0") is None  # not owned


def test_the_most_recently_used_stay_in_memory(store: BoundedStateStore) -> None:
    store.load(0, {})
    for n in range(3):
        assert store.put(0, user(n))
    store.get(0, "user-u1")  # u0 is now the coldest resident... already spilled
    store.put(0, user(3))
    assert store.spilled.count(0) == 2  # u0 and u2: u1 and u3 were used last
    assert store.put(0, user(0, version=2))  # taken back in memory, newer
    assert store.get(0, "user-u0") == user(0, version=2)
    assert {s.stream_id: s.version for s in store.drop(0)} == {
        "user-u0": 2, "user-u1": 1, "user-u2": 1, "user-u3": 1}
    assert store.stream_count() == 0
    assert not store.put(0, user(9))  # revoked


def test_a_restore_through_staging_never_holds_more_than_the_bound(
        store: BoundedStateStore) -> None:
    staged = store.staging(0)
    for n in range(6):
        staged[f"user-u{n}"] = user(n)
        assert resident(store) <= 2
    staged.pop("user-u0", None)  # a tombstone of a spilled stream
    staged.pop("user-u5", None)  # of a resident one
    staged.pop("user-gone", None)
    staged["user-u1"] = user(1, version=3)  # a later snapshot of a spilled one
    assert len(staged) == 4
    store.load(0, staged)
    assert store.owns(0)
    assert {n: store.get(0, f"user-u{n}") for n in range(6)} == {
        0: None, 1: user(1, version=3), 2: user(2), 3: user(3), 4: user(4), 5: None}


def test_a_restore_again_replaces_what_the_store_held(store: BoundedStateStore) -> None:
    store.load(0, {f"user-u{n}": user(n) for n in range(4)})
    store.load(1, {"user-u9": user(9)})
    staged = store.staging(0)  # a recovery: partition 0 read again
    staged["user-u1"] = user(1, version=2)
    store.load(0, staged)
    assert store.get(0, "user-u0") is None
    assert store.get(0, "user-u1") == user(1, version=2)
    assert store.get(1, "user-u9") == user(9)
    assert store.stream_count() == 2


def test_close_removes_the_file_and_a_killed_predecessors(tmp_path: Path) -> None:
    killed = BoundedStateStore(1, spill_directory=tmp_path, owner="cqrs.processor-0")
    killed.load(0, {f"user-u{n}": user(n) for n in range(3)})
    other = BoundedStateStore(1, spill_directory=tmp_path, owner="cqrs.processor-1")
    store = BoundedStateStore(1, spill_directory=tmp_path, owner="cqrs.processor-0")
    assert not killed.spilled.path.exists()  # the same slot's, left by a SIGKILL
    assert other.spilled.path.exists()
    store.close()
    store.close()
    other.close()
    assert list(tmp_path.iterdir()) == []


def test_the_same_id_under_two_partitions_stays_apart(tmp_path: Path) -> None:
    store = BoundedStateStore(1, spill_directory=tmp_path)
    store.load(0, {"user-u1": user(1, version=5), "user-u2": user(2)})
    store.load(1, {"user-u1": user(1), "user-u3": user(3)})
    assert store.get(0, "user-u1") == user(1, version=5)
    assert store.get(1, "user-u1") == user(1)
    assert store.counts() == (1, 3)
    store.close()


def test_a_failing_file_raises_and_drops_nothing_from_memory(
        store: BoundedStateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.load(0, {"user-u0": user(0), "user-u1": user(1)})

    def full(*_: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store.spilled, "_write", full)
    with pytest.raises(StateUnavailable, match="disk is full"):
        store.put(0, user(2))
    monkeypatch.undo()
    assert store.get(0, "user-u0") == user(0)  # still resident: never written, never dropped
    assert store.get(0, "user-u1") == user(1)


def test_a_failing_file_stops_the_batch_and_dead_letters_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = ProcessorConfig(kafka={}, topics=TopicNames("c", "e", "a", "r", "dlq"),
                             batch_ms=1, max_resident_streams=1)
    broker = MemoryBroker.for_config(config, 1)
    for n in range(3):
        broker.append("c", 0, b"k", command("CreateUser", f"c{n}", f"u{n}",
                                            {"email": f"u{n}@example.com", "name": f"U{n}"}))
    processor = broker.processor(config)
    processor.start()
    drain(processor, broker)
    store = processor._store
    assert isinstance(store, BoundedStateStore)
    assert store.counts() == (1, 2)

    def failing(*_: object) -> None:
        raise StateUnavailable("the spill file failed (database or disk is full)")

    monkeypatch.setattr(store.spilled, "take", failing)
    broker.append("c", 0, b"k", command("UpdateUser", "c9", "u0", {"name": "New"}))
    with pytest.raises(StateUnavailable):
        processor.step()
    assert broker.records("dlq") == []
    assert len(broker.records("r")) == 3  # nothing answered for c9, nothing committed
    processor.close()


def command(kind: str, command_id: str, user_id: str, data: dict[str, str]) -> bytes:
    return json.dumps({"command_id": command_id, "type": kind, "aggregate_id": user_id,
                       "data": data, "issued_at": "2024-05-01T00:00:00Z"}).encode()


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="resident must be >= 1"):
        BoundedStateStore(0)
