"""`spill.BoundedStateStore`: at most `resident` states in memory, the others in its file, every
one read back as it was; a restore through `staging` is bounded the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.domain.users import UserState
from pipeline.processor.spill import BoundedStateStore
from pipeline.processor.state import StreamState


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
    assert {s.stream_id: s.version for s in store.drop(0).values()} == {
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


def test_close_removes_the_file(tmp_path: Path) -> None:
    store = BoundedStateStore(1, spill_directory=tmp_path)
    store.load(0, {f"user-u{n}": user(n) for n in range(3)})
    assert store.spilled.path.exists()
    store.close()
    assert list(tmp_path.iterdir()) == []


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="resident must be >= 1"):
        BoundedStateStore(0)
