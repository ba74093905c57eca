"""The users index's refresh interval as a setting, and the state index written without waiting
for a refresh (its readers refresh it instead): over stub clients, no Elasticsearch."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from cqrs.config import Config
from cqrs.settings import Settings
from projections.config import SearchConfig, refresh_interval_ms
from projections.runtime.records import Batch, SourceRecord
from projections.search.index import (
    IndexNames,
    apply_refresh_interval,
    index_settings,
    load_mapping,
)
from projections.search.projector import SearchProjectorStore


@pytest.mark.parametrize(("text", "ms"), [
    ("1s", 1_000), ("500ms", 500), ("30s", 30_000), ("2m", 120_000), ("1h", 3_600_000),
    ("-1", None)])
def test_refresh_intervals_elasticsearch_accepts(text: str, ms: int | None) -> None:
    assert refresh_interval_ms(text) == ms


@pytest.mark.parametrize("text", ["", "1", "0s", "1.5s", " 1s", "1 s", "fast", "-2", "1S"])
def test_refresh_intervals_it_would_refuse_are_refused_here(text: str) -> None:
    with pytest.raises(ValueError, match="refresh interval"):
        refresh_interval_ms(text)
    with pytest.raises(ValueError, match="refresh interval"):
        SearchConfig(refresh_interval=text)


def test_the_setting_reaches_the_search_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CQRS_SEARCH_REFRESH_INTERVAL", raising=False)
    assert Config.from_settings(Settings()).search.refresh_interval == "1s"
    monkeypatch.setenv("CQRS_SEARCH_REFRESH_INTERVAL", "250ms")
    search = Config.from_settings(Settings()).search
    assert (search.refresh_interval, search.refresh_ms) == ("250ms", 250)
    monkeypatch.setenv("CQRS_SEARCH_REFRESH_INTERVAL", "250")
    with pytest.raises(ValueError, match="refresh interval"):
        Settings()


def test_index_settings_replace_only_the_refresh_interval() -> None:
    shipped = load_mapping()["settings"]
    settings = index_settings("200ms")
    assert settings["index"] == {**shipped["index"], "refresh_interval": "200ms"}
    assert settings["analysis"] == shipped["analysis"]
    assert index_settings()["index"]["refresh_interval"] == shipped["index"]["refresh_interval"]


class StubIndices:
    """`indices.get_settings`/`put_settings`/`refresh` of a cluster holding `interval`."""

    def __init__(self, interval: str | None) -> None:
        self.interval = interval
        self.put: list[dict[str, Any]] = []
        self.refreshed: list[str] = []

    async def get_settings(self, *, index: str, name: str, include_defaults: bool) -> Any:
        own = {"index": {"refresh_interval": self.interval}} if self.interval else {}
        return SimpleNamespace(body={index: {"settings": own,
                                             "defaults": {"index": {"refresh_interval": "1s"}}}})

    async def put_settings(self, *, index: str, settings: dict[str, Any]) -> None:
        self.put.append(settings)

    async def refresh(self, *, index: str) -> None:
        self.refreshed.append(index)


@pytest.mark.parametrize(("held", "wanted", "changed"), [
    ("1s", "1s", False), ("1000ms", "1s", False), (None, "1s", False), (None, "500ms", True),
    ("1s", "5s", True), ("-1", "1s", True), ("1s", "-1", True), ("1.5s", "1s", True)])
def test_the_interval_is_put_only_when_it_differs(held: str | None, wanted: str,
                                                  changed: bool) -> None:
    indices = StubIndices(held)
    client: Any = SimpleNamespace(indices=indices)
    assert asyncio.run(apply_refresh_interval(client, "users-v1", wanted)) is changed
    assert indices.put == ([{"index": {"refresh_interval": wanted}}] if changed else [])


class StubClient:
    """Records every state `bulk`'s refresh argument and the order of refreshes and searches."""

    def __init__(self) -> None:
        self.indices = StubIndices("1s")
        self.calls: list[tuple[str, Any]] = []

    async def bulk(self, *, index: str, operations: list[Any], refresh: Any) -> Any:
        self.calls.append(("bulk", refresh))
        return SimpleNamespace(body={"items": [
            {"index": {"_id": "x", "status": 201}} for _ in operations[::2]]})

    async def search(self, *, index: str, query: Any, size: int) -> Any:
        self.calls.append(("search", self.indices.refreshed.copy()))
        return SimpleNamespace(body={"hits": {"hits": []}})


def store_over(client: StubClient) -> SearchProjectorStore:
    store = SearchProjectorStore(client, IndexNames("users"),  # type: ignore[arg-type]
                                 index="users-v1")
    store._state_index = "users-v1-state"
    return store


def test_parking_and_dead_lettering_batches_do_not_wait_for_a_refresh() -> None:
    client = StubClient()
    record = SourceRecord("t.events", 0, 7, b"user-a@2", b"{}")
    batch = Batch([], parked=[("user-a", record)], blocked=[("user-a", record)],
                  checkpoints={("t.events", 0): 7})
    asyncio.run(store_over(client).apply(batch))
    assert [refresh for call, refresh in client.calls if call == "bulk"] == [False, False]


@pytest.mark.parametrize("read", ["parked_streams", "parked_records", "blocked", "checkpoints"])
def test_every_read_of_the_state_index_refreshes_it_first(read: str) -> None:
    client = StubClient()
    store = store_over(client)
    method = getattr(store, read)
    asyncio.run(method("t.events") if read == "checkpoints" else method())
    assert client.calls == [("search", ["users-v1-state"])]
