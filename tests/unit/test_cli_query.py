"""The query commands over fakes: tables, --json, exit codes and hints (no services)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from cqrs.bootstrap import Bootstrap
from cqrs.cli import app
from cqrs.config import Config
from cqrs.gateway.compose import ReadSide
from projections.postgres.fake import FakeStore
from projections.search import InvalidSearch, SearchUnavailable, UserHit, UserSearchResult

NOW = datetime(2025, 1, 2, tzinfo=UTC)


class FakeSearch:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int, bool]] = []
        self.fault: Exception | None = None

    async def search_users(self, text: str, limit: int = 10, offset: int = 0, *,
                           active_only: bool = False) -> UserSearchResult:
        if self.fault is not None:
            raise self.fault
        self.calls.append((text, limit, offset, active_only))
        return UserSearchResult(total=1, hits=[UserHit(
            id="u1", name="Alice Smith", email="alice@example.com", active=True, version=2,
            score=3.5)])


@pytest.fixture
def store() -> FakeStore:
    fake = FakeStore()
    fake.users["u1"] = {"id": "u1", "email": "alice@example.com", "name": "Alice Smith",
                        "active": True, "created_at": NOW, "updated_at": NOW, "version": 2}
    fake.orders["o1"] = {"id": "o1", "customer_id": "u1", "items": [{"sku": "a"}], "total": 900,
                         "currency": "EUR", "status": "paid", "payment_ref": "p1",
                         "tracking": None, "created_at": NOW, "updated_at": NOW, "version": 2}
    return fake


BOOTSTRAP: list[Bootstrap] = []
"""The `Bootstrap` `run` hands the command line (set by the `search` fixture), if any."""


@pytest.fixture
def search(store: FakeStore) -> Iterator[FakeSearch]:
    """The read side of `run`'s invocations: `store` and this fake search."""
    fake = FakeSearch()

    async def open_fakes(config: Config) -> ReadSide:
        return ReadSide(store, fake)

    BOOTSTRAP[:] = [Bootstrap(read_side=open_fakes)]
    yield fake
    BOOTSTRAP.clear()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), obj=BOOTSTRAP[0] if BOOTSTRAP else None)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.usefixtures("search")
def test_get_user_prints_a_table_or_json() -> None:
    code, out, _ = run("get", "user", "u1")
    assert code == 0
    assert "alice@example.com" in out
    assert "version" in out
    code, out, _ = run("get", "user", "u1", "--json")
    assert json.loads(out)["name"] == "Alice Smith"


@pytest.mark.usefixtures("search")
def test_an_absent_user_exits_1_with_a_hint_on_stderr() -> None:
    code, out, err = run("get", "user", "nobody")
    assert (code, out) == (1, "")
    assert "'nobody' not found" in err
    assert "hint:" in err


@pytest.mark.usefixtures("search")
def test_min_version_not_reached_exits_3() -> None:
    code, _, err = run("get", "user", "u1", "--min-version", "3", "--wait", "0.1")
    assert code == 3
    assert "not yet at version 3" in err
    assert run("get", "user", "u1", "--min-version", "2")[0] == 0


@pytest.mark.usefixtures("search")
def test_bad_input_exits_2() -> None:
    assert run("get", "user", "u1", "--min-version", "-1")[0] == 2
    assert run("search", "x", "--limit", "0")[0] == 2


@pytest.mark.usefixtures("search")
def test_get_order_and_orders_of_a_user() -> None:
    code, out, _ = run("get", "order", "o1", "--json")
    assert (code, json.loads(out)["status"]) == (0, "paid")
    assert run("get", "order", "o9")[0] == 1
    code, out, _ = run("orders", "--user", "u1")
    assert code == 0
    assert "900 EUR" in out
    assert json.loads(run("orders", "--user", "u1", "--json")[1])["order_count"] == 1


@pytest.mark.usefixtures("search")
def test_stats_users() -> None:
    code, out, _ = run("stats", "users", "--json")
    assert code == 0
    assert json.loads(out) == {"total": 1, "active": 1, "new_today": 0, "new_this_week": 0}
    assert "new_this_week" in run("stats", "users")[1]


def test_search_passes_options_and_prints_hits(search: FakeSearch) -> None:
    code, out, _ = run("search", "alice", "--limit", "5", "--offset", "1", "--active-only")
    assert code == 0
    assert "Alice Smith" in out
    assert search.calls == [("alice", 5, 1, True)]
    assert json.loads(run("search", "alice", "--json")[1])["total"] == 1


@pytest.mark.parametrize(("fault", "code"), [
    (SearchUnavailable("search answered 503"), 3),
    (InvalidSearch("the search text is longer than 200 characters"), 2),
])
def test_search_faults_exit_with_their_code(search: FakeSearch, fault: Exception,
                                            code: int) -> None:
    search.fault = fault
    exit_code, _, err = run("search", "alice")
    assert exit_code == code
    assert str(fault) in err
