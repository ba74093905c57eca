"""The latency budget's bookkeeping (`bench.latency`): stamps, hops, the checkpoint rule and the
pollers, with a hand-driven clock; no services."""

from __future__ import annotations

import itertools
import threading

import pytest

from bench.latency import HOPS, STAMPS, Poller, Stamps, budget, covered, percentiles, user_of_key


def clock_at(*times: float) -> Stamps:
    ticks = iter(times)
    return Stamps(clock=lambda: next(ticks))


def test_a_command_stamped_at_every_stage_has_every_hop() -> None:
    stamps = clock_at(10.0)
    stamps.follow("l1")
    stamps.committed("l1", (3, 40), 10.020)
    stamps.stamp(["l1"], "postgres", 10.050)
    stamps.stamp(["l1"], "search_commit", 10.070)
    stamps.stamp(["l1"], "searchable", 10.900)
    assert stamps.complete()
    hops = {name: stamps.hop(*ends)[0] for name, ends in HOPS.items()}
    assert hops == pytest.approx({
        "issue_to_processor_commit": 0.020, "processor_commit_to_postgres": 0.030,
        "processor_commit_to_search_commit": 0.050, "search_commit_to_searchable": 0.830,
        "issue_to_postgres": 0.050, "issue_to_searchable": 0.900})


def test_the_first_sighting_wins_and_unfollowed_ids_are_ignored() -> None:
    stamps = clock_at(1.0)
    stamps.follow("a1")
    stamps.committed("a1", (0, 5), 1.1)
    stamps.committed("a1", (0, 9), 1.5)  # a redelivery: neither time nor position moves
    stamps.committed("other", (0, 6), 1.2)
    stamps.stamp(["a1", "other"], "postgres", 1.3)
    stamps.stamp(["a1"], "postgres", 1.4)
    assert stamps.positions(["a1", "other"]) == {"a1": (0, 5)}
    assert stamps.hop("issued", "postgres") == pytest.approx([0.3])
    assert stamps.followed() == 1
    assert stamps.pending("searchable") == ["a1"]
    assert stamps.pending("postgres") == []


def test_the_budget_counts_what_is_missing_per_hop() -> None:
    stamps = clock_at(0.0, 0.0)
    stamps.follow("a1")
    stamps.follow("a2")
    stamps.committed("a1", (0, 1), 0.01)
    stamps.stamp(["a1"], "postgres", 0.02)
    found = budget(stamps)
    assert set(found) == set(HOPS)
    assert found["issue_to_postgres"]["count"] == 1
    assert found["issue_to_postgres"]["missing"] == 1
    assert found["issue_to_searchable"] == {**percentiles([]), "missing": 2}
    assert not stamps.complete()


def test_an_event_is_search_committed_once_its_partition_checkpoint_reaches_it() -> None:
    positions = {"a": (0, 10), "b": (0, 11), "c": (1, 3), "d": (2, 0)}
    assert covered(positions, {0: 10, 1: 7}) == {"a", "c"}
    assert covered(positions, {}) == set()


@pytest.mark.parametrize(("key", "user_id"), [
    (b"user-l42@1", "l42"), (b"user-a7@12", "a7"), (b"order-o1@1", None), (None, None),
    (b"", None)])
def test_the_user_of_an_event_key(key: bytes | None, user_id: str | None) -> None:
    assert user_of_key(key) == user_id


def test_percentiles_in_milliseconds() -> None:
    found = percentiles([i / 1000 for i in range(1, 101)])
    assert (found["count"], found["p50_ms"], found["p99_ms"], found["max_ms"]) == (
        100, 50.5, 99.0, 100.0)
    assert percentiles([0.25])["p99_ms"] == 250.0


def test_a_poller_stamps_what_its_sink_shows_and_stops() -> None:
    counter = itertools.count()
    stamps = Stamps(clock=lambda: float(next(counter)))
    stamps.follow("a1")
    stamps.follow("a2")
    asked: list[list[str]] = []
    seen = threading.Event()

    def find(ids: list[str]) -> set[str]:
        asked.append(ids)
        if len(asked) >= 2:
            seen.set()
            return {"a2"}
        return set()

    poller = Poller(stamps, "postgres", find, interval=0.001)
    poller.start()
    assert seen.wait(5)
    poller.done.set()
    poller.join(5)
    assert asked[0] == ["a1", "a2"]
    assert stamps.pending("postgres") == ["a1"]
    assert poller.error is None


def test_a_failing_sink_is_reported_not_lost() -> None:
    stamps = Stamps()
    stamps.follow("a1")

    def find(ids: list[str]) -> set[str]:
        raise ConnectionError("down")

    poller = Poller(stamps, "searchable", find, interval=0.001)
    poller.start()
    poller.join(5)
    assert isinstance(poller.error, ConnectionError)


def test_every_hop_joins_two_known_stamps() -> None:
    assert {stamp for ends in HOPS.values() for stamp in ends} == set(STAMPS)
