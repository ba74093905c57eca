"""`spill.BoundedStateStore` against the plain `StateStore`, over random sequences of what the
processor does with its store: loads, restores through `staging` (sets, tombstones, lengths),
gets, puts and revocations, with bounds of 1 to 4 states in memory and stream ids that may recur
under several partitions. After every step: each owned partition holds what the plain store
holds (in memory and in the file together), no state is both in memory and in the file, the
file's counts are its rows, and memory holds at most the bound."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pipeline.domain.users import UserState
from pipeline.processor.spill import BoundedStateStore
from pipeline.processor.state import StateStore, StreamState
from topics import decode_snapshot

PARTITIONS = st.integers(0, 2)
NUMBERS = st.integers(0, 7)
VERSIONS = st.integers(1, 50)


def user(partition: int, number: int, version: int, shared: bool) -> StreamState:
    stream_id = f"user-u{number}" if shared else f"user-p{partition}n{number}"
    state = UserState(email=f"u{number}@example.com", name=f"p{partition} v{version}",
                      active=version % 2 == 0)
    return StreamState(stream_id, "user", version, state, (f"c{partition}-{number}-{version}",))


class Stores(RuleBasedStateMachine):
    @initialize(bound=st.integers(1, 4), shared=st.booleans())
    def make(self, bound: int, shared: bool) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="cqrs-spill-test-"))
        self.bounded = BoundedStateStore(bound, self.directory)
        self.plain = StateStore()
        self.shared = shared
        self.staged: dict[int, tuple[object, dict[str, StreamState]]] = {}

    def teardown(self) -> None:
        if hasattr(self, "bounded"):
            self.bounded.close()
            shutil.rmtree(self.directory, ignore_errors=True)

    def user(self, partition: int, number: int, version: int) -> StreamState:
        return user(partition, number, version, self.shared)

    @rule(partition=PARTITIONS, items=st.lists(st.tuples(NUMBERS, VERSIONS), max_size=8))
    def load(self, partition: int, items: list[tuple[int, int]]) -> None:
        if partition in self.staged:
            return
        streams = {s.stream_id: s for s in (self.user(partition, n, v) for n, v in items)}
        self.bounded.load(partition, streams)
        self.plain.load(partition, streams)

    @rule(partition=PARTITIONS)
    def restore_begins(self, partition: int) -> None:
        if partition not in self.staged:
            self.staged[partition] = (self.bounded.staging(partition),
                                      self.plain.staging(partition))

    @rule(partition=PARTITIONS, number=NUMBERS, version=VERSIONS)
    def restore_reads(self, partition: int, number: int, version: int) -> None:
        if partition in self.staged:
            stream = self.user(partition, number, version)
            bounded, plain = self.staged[partition]
            bounded[stream.stream_id] = stream  # type: ignore[index]
            plain[stream.stream_id] = stream

    @rule(partition=PARTITIONS, number=NUMBERS)
    def restore_reads_a_tombstone(self, partition: int, number: int) -> None:
        if partition in self.staged:
            stream_id = self.user(partition, number, 1).stream_id
            bounded, plain = self.staged[partition]
            assert bounded.pop(stream_id, None) == plain.pop(stream_id, None)  # type: ignore[attr-defined]
            assert len(bounded) == len(plain)  # type: ignore[arg-type]

    @rule(partition=PARTITIONS)
    def restore_ends(self, partition: int) -> None:
        if partition in self.staged:
            bounded, plain = self.staged.pop(partition)
            self.bounded.load(partition, bounded)  # type: ignore[arg-type]
            self.plain.load(partition, plain)

    @rule(partition=PARTITIONS, number=NUMBERS)
    def get(self, partition: int, number: int) -> None:
        if partition not in self.staged:
            stream_id = self.user(partition, number, 1).stream_id
            assert self.bounded.get(partition, stream_id) == self.plain.get(partition, stream_id)

    @rule(partition=PARTITIONS, number=NUMBERS, version=VERSIONS)
    def put(self, partition: int, number: int, version: int) -> None:
        if partition not in self.staged:
            stream = self.user(partition, number, version)
            assert self.bounded.put(partition, stream) == self.plain.put(partition, stream)

    @rule(partition=PARTITIONS)
    def revoke(self, partition: int) -> None:
        if partition not in self.staged:
            dropped = {s.stream_id: s for s in self.bounded.drop(partition)}
            assert dropped == {s.stream_id: s for s in self.plain.drop(partition)}

    @invariant()
    def the_same_states(self) -> None:
        if not hasattr(self, "bounded"):
            return
        store = self.bounded
        rows = store.spilled._db.execute("SELECT partition, stream_id, data FROM states").fetchall()
        in_file: dict[int, dict[str, StreamState]] = {}
        for partition, stream_id, data in rows:
            in_file.setdefault(partition, {})[stream_id] = StreamState.from_snapshot(
                decode_snapshot(data.encode()))
        assert {p: n for p, n in store.spilled._counts.items() if n} == {
            p: len(found) for p, found in in_file.items()}
        in_memory = {**store._partitions, **store._staging}
        assert len(store._recency) == sum(len(found) for found in in_memory.values())
        assert len(store._recency) <= store.resident
        for partition, found in in_memory.items():
            assert not found.keys() & in_file.get(partition, {}).keys()
        owned = set(self.plain._partitions) - set(self.staged)
        assert set(store._partitions) == owned
        for partition in owned:
            together = {**in_file.get(partition, {}), **store._partitions[partition]}
            assert together == self.plain._partitions[partition]


TestStores = Stores.TestCase
TestStores.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                               suppress_health_check=list(HealthCheck))
