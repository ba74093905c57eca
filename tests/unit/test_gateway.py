"""The gateway over fakes (FakeStore, a fake command client, a fake search) through TestClient."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from cqrs.bootstrap import Bootstrap
from cqrs.config import Config
from cqrs.gateway import ReadSide, Services, create_app
from cqrs.gateway.bodies import MAX_BODY_BYTES, BodyGuard
from cqrs.gateway.compose import CommandPool
from pipeline.client import KafkaUnavailable, ResultTimeout, stream_id_of
from projections.postgres.fake import FakeStore
from projections.search import UserHit, UserSearchResult
from topics import CommandEnvelope, CommandResult

with warnings.catch_warnings():
    # starlette deprecates httpx for httpx2, which is not a dependency of this project (yet).
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NOW = datetime(2025, 1, 2, tzinfo=UTC)
ALICE = {"email": "alice@example.com", "name": "Alice Smith"}


class FakeCommands:
    """Answers every command with `answer` (a status, "timeout" or "down")."""

    def __init__(self) -> None:
        self.answer = "accepted"
        self.sent: list[CommandEnvelope] = []
        self.closed = False

    def send(self, command: CommandEnvelope) -> str:
        if self.answer == "down":
            raise KafkaUnavailable("no broker answered")
        self.sent.append(command)
        return command.command_id

    def send_and_wait(self, command: CommandEnvelope, timeout: float) -> CommandResult:
        self.send(command)
        if self.answer == "timeout":
            raise ResultTimeout("no result", [command.command_id], {})
        rejected = self.answer == "rejected"
        return CommandResult(
            command_id=command.command_id, stream_id=stream_id_of(command),
            status=self.answer,
            version=1, code="user.already_exists" if rejected else None,
            reason="the user already exists" if rejected else None, processed_at=NOW)

    def close(self) -> None:
        self.closed = True


class FakeSearch:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int, bool]] = []

    async def search_users(self, text: str, limit: int = 10, offset: int = 0, *,
                           active_only: bool = False) -> UserSearchResult:
        self.calls.append((text, limit, offset, active_only))
        hit = UserHit(id="u1", name="Alice Smith", email="alice@example.com", active=True,
                      version=1, score=1.5)
        return UserSearchResult(total=1, hits=[hit])


class Fakes:
    def __init__(self) -> None:
        self.commands = FakeCommands()
        self.store = FakeStore()
        self.search = FakeSearch()

    def put_user(self, user_id: str, version: int = 1) -> None:
        self.store.users[user_id] = {"id": user_id, **ALICE, "active": True, "created_at": NOW,
                                     "updated_at": NOW, "version": version}

    async def services(self, config: Config) -> Services:
        async def ok() -> None:
            return None

        async def down() -> None:
            raise ConnectionError("refused")

        return Services(CommandPool([self.commands]), ReadSide(self.store, self.search),
                        {"kafka": ok, "postgres": ok, "elasticsearch": down})


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def client(fakes: Fakes) -> Iterator[TestClient]:
    boot = Bootstrap(services=fakes.services)
    with TestClient(create_app(boot.open_services)) as test_client:
        yield test_client
    assert fakes.commands.closed


def create_user(client: TestClient, query: str = "", **extra: Any) -> Any:
    return client.post(f"/commands/CreateUser{query}",
                       json={"aggregate_id": "u1", "data": ALICE, **extra})


def test_a_command_is_submitted_with_202(client: TestClient, fakes: Fakes) -> None:
    response = create_user(client, command_id="c-1")
    assert response.status_code == 202
    assert response.json() == {"command_id": "c-1", "stream_id": "user-u1",
                               "status": "submitted"}
    [sent] = fakes.commands.sent
    assert (sent.type, sent.aggregate_id, dict(sent.data)) == ("CreateUser", "u1", ALICE)


def test_wait_returns_the_accepted_result(client: TestClient) -> None:
    response = create_user(client, "?wait=5")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["version"], body["stream_id"]) == ("accepted", 1, "user-u1")


def test_wait_returns_409_with_the_rejection(client: TestClient, fakes: Fakes) -> None:
    fakes.commands.answer = "rejected"
    response = create_user(client, "?wait=5")
    assert response.status_code == 409
    body = response.json()
    assert (body["code"], body["version"]) == ("user.already_exists", 1)
    assert body["reason"] == "the user already exists"


def test_wait_timeout_is_504_naming_the_command(client: TestClient, fakes: Fakes) -> None:
    fakes.commands.answer = "timeout"
    response = create_user(client, "?wait=0.1", command_id="c-2")
    assert response.status_code == 504
    body = response.json()
    assert (body["status"], body["command_id"]) == ("timeout", "c-2")
    assert "resend" in body["detail"]


def test_kafka_down_is_503(client: TestClient, fakes: Fakes) -> None:
    fakes.commands.answer = "down"
    assert create_user(client).status_code == 503


@pytest.mark.parametrize("body", [
    {"aggregate_id": "u1", "data": {"email": "not-an-email", "name": "A"}},
    {"aggregate_id": "u1", "data": {"email": "a@b.co"}},
    {"aggregate_id": "u1", "data": {**ALICE, "extra": 1}},
    {"data": ALICE},
    {"aggregate_id": "u1", "data": ALICE, "expected_version": -1},
])
def test_invalid_bodies_are_422_and_nothing_is_sent(
    client: TestClient, fakes: Fakes, body: dict[str, Any]
) -> None:
    response = client.post("/commands/CreateUser", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]
    assert fakes.commands.sent == []


def test_an_aggregate_id_that_makes_no_stream_id_is_422(client: TestClient) -> None:
    response = client.post("/commands/CreateUser", json={"aggregate_id": "a b", "data": ALICE})
    assert response.status_code == 422
    assert response.json()["detail"]["code"].startswith("validation.")


def test_unknown_command_types_have_no_route(client: TestClient) -> None:
    assert client.post("/commands/Nope", json={"aggregate_id": "u1", "data": {}}).status_code \
        == 404


def test_every_command_type_has_a_typed_route(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/commands/CreateOrder" in schema["paths"]
    assert "CreateOrder" in str(schema["components"]["schemas"])


def test_get_user_and_404(client: TestClient, fakes: Fakes) -> None:
    fakes.put_user("u1")
    assert client.get("/users/u1").json()["email"] == "alice@example.com"
    response = client.get("/users/nobody")
    assert response.status_code == 404
    assert "nobody" in response.json()["detail"]


def test_min_version_not_reached_is_504(client: TestClient, fakes: Fakes) -> None:
    fakes.put_user("u1", version=1)
    response = client.get("/users/u1?min_version=2&wait=0.2")
    assert response.status_code == 504
    assert "projection has not reached version 2 yet" in response.json()["detail"]
    assert client.get("/users/u1?min_version=1").status_code == 200


def test_search_passes_the_parameters(client: TestClient, fakes: Fakes) -> None:
    response = client.get("/users?q=alice&limit=5&offset=2&active_only=true")
    assert response.status_code == 200
    assert response.json()["hits"][0]["id"] == "u1"
    assert fakes.search.calls == [("alice", 5, 2, True)]
    assert client.get("/users?limit=0").status_code == 422


def test_stats_orders_and_a_users_orders(client: TestClient, fakes: Fakes) -> None:
    fakes.put_user("u1")
    fakes.store.orders["o1"] = {
        "id": "o1", "customer_id": "u1", "items": [], "total": 500, "currency": "EUR",
        "status": "paid", "payment_ref": "p", "tracking": None, "created_at": NOW,
        "updated_at": NOW, "version": 2}
    assert client.get("/stats/users").json()["total"] == 1
    assert client.get("/orders/o1").json()["status"] == "paid"
    assert client.get("/orders/o2").status_code == 404
    mine = client.get("/users/u1/orders").json()
    assert (mine["order_count"], mine["spent"]) == (1, {"EUR": 500})


def test_healthz_names_the_service_that_is_down(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["kafka"] == {"ok": True}
    assert checks["elasticsearch"]["ok"] is False


VALID = b'{"aggregate_id": "u1", "data": {"email": "a@b.co", "name": "Al"}}'
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(("body", "says"), [
    (b'{"aggregate_id": "u1", "data": {"email": "a@b.co", "name": "\\ud800"}}',
     "lone surrogate \\ud800 at $.data.name"),
    (b'{"aggregate_id": "\\udfff", "data": {}}', "lone surrogate \\udfff at $.aggregate_id"),
    (b'{"aggregate_id": "u1", "\\ud800x": 1, "data": {}}', "lone surrogate"),
    (b'{"aggregate_id": "u1", "data": ', "not valid JSON"),
    (b"", "not valid JSON"),
    (b'{"aggregate_id": "\xff"}', "not UTF-8"),
    (b'{"aggregate_id": "o1", "data": {"payment_ref": "p", "amount": NaN}}', "NaN"),
    (b'{"aggregate_id": "o1", "data": {"payment_ref": "p", "amount": 1e999}}', "out of range"),
    (b'{"aggregate_id": "u1", "expected_version": ' + b"9" * 5000 + b', "data": {}}',
     "not valid JSON"),
    (b"[" * 40 + b"]" * 40, "deeper than 32"),
    (b"[" * 20000 + b"]" * 20000, "deeper than 32"),
])
def test_a_body_that_is_not_strict_json_is_400_and_nothing_is_sent(
    client: TestClient, fakes: Fakes, body: bytes, says: str
) -> None:
    response = client.post("/commands/CreateUser?wait=1", content=body, headers=JSON)
    assert response.status_code == 400
    assert says in response.json()["detail"]
    assert fakes.commands.sent == []


@pytest.mark.parametrize("body", [b"[1, 2]", b"null", b'"text"', b"12"])
def test_a_body_that_is_not_an_object_is_422(client: TestClient, body: bytes) -> None:
    response = client.post("/commands/CreateUser", content=body, headers=JSON)
    assert response.status_code == 422


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_body_that_is_not_json_is_415(client: TestClient, content_type: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/commands/CreateUser", content=VALID, headers=headers)
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


def test_json_with_a_charset_or_a_json_suffix_is_accepted(client: TestClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = client.post("/commands/CreateUser", content=VALID,
                               headers={"content-type": content_type})
        assert response.status_code == 202


def test_a_body_over_the_limit_is_413_with_or_without_content_length(
    client: TestClient, fakes: Fakes
) -> None:
    padding = b" " * MAX_BODY_BYTES
    response = client.post("/commands/CreateUser", content=VALID + padding, headers=JSON)
    assert response.status_code == 413
    assert str(MAX_BODY_BYTES) in response.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        yield VALID
        for _ in range(80):
            yield b" " * 1024

    response = client.post("/commands/CreateUser", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert fakes.commands.sent == []
    exact = VALID + b" " * (MAX_BODY_BYTES - len(VALID))
    assert client.post("/commands/CreateUser", content=exact, headers=JSON).status_code == 202


def test_an_endless_chunked_body_is_cut_off_at_the_limit() -> None:
    """The guard stops reading once the limit is passed: it never holds an unbounded body."""
    received: list[int] = []
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        received.append(1)
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    async def send(message: Any) -> None:
        sent.append(message)

    async def unreachable(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the route was called")

    scope = {"type": "http", "method": "POST", "path": "/commands/CreateUser",
             "headers": [(b"content-type", b"application/json")]}
    asyncio.run(BodyGuard(unreachable)(scope, receive, send))
    assert sent[0]["status"] == 413
    assert len(received) == MAX_BODY_BYTES // 1024 + 1


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/commands/CreateUser",
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(MAX_BODY_BYTES + 1).encode())]}
    asyncio.run(BodyGuard(receive)(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 413


@pytest.mark.parametrize("url", [
    "/users/u1?min_version=9223372036854775808",
    "/users/u1?min_version=" + "9" * 5000,
    "/users/u1?min_version=abc",
    "/users/u1?min_version=1&wait=nan",
    "/users/u1?min_version=1&wait=inf",
    "/orders/o1?min_version=-1",
    "/users?offset=10000",
    "/users?offset=" + "9" * 40,
    "/users?active_only=maybe",
    "/users/a%00b",
    "/users/a%00b/orders",
    "/orders/a%0Ab",
])
def test_invalid_query_parameters_and_ids_are_422(
    client: TestClient, fakes: Fakes, url: str
) -> None:
    fakes.put_user("u1")
    response = client.get(url)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
