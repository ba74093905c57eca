"""The gateway through the whole pipeline: HTTP command → processor → projectors → HTTP query."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cqrs.bootstrap import Bootstrap
from cqrs.gateway import create_app
from tests.e2e.conftest import Pipeline

with warnings.catch_warnings():
    # starlette deprecates httpx for httpx2, which is not a dependency of this project (yet).
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

WAIT = 30


@pytest.fixture(scope="module")
def http(pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(Bootstrap(pipeline.settings).open_services)) as client:
        yield client


def poll(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def command(http: TestClient, type_: str, aggregate_id: str, data: dict[str, Any]) -> Any:
    return http.post(f"/commands/{type_}?wait={WAIT}",
                     json={"aggregate_id": aggregate_id, "data": data})


def test_healthz_once_the_projector_made_its_tables(http: TestClient) -> None:
    response = poll(lambda: http.get("/healthz"), lambda r: r.status_code == 200)
    assert response.status_code == 200, response.json()


def test_users_and_orders_through_http(http: TestClient, pipeline: Pipeline) -> None:
    tag = uuid.uuid4().hex[:6]
    user_id, order_id = f"u-{tag}", f"o-{tag}"
    email = f"zelda.{tag}@example.com"
    created = command(http, "CreateUser", user_id, {"email": email, "name": "Zelda Fitzgerald"})
    assert created.status_code == 200, (created.json(), pipeline.log_tail())
    assert (created.json()["status"], created.json()["version"]) == ("accepted", 1)

    user = http.get(f"/users/{user_id}?min_version=1&wait={WAIT}")
    assert user.status_code == 200, (user.json(), pipeline.log_tail())
    assert (user.json()["email"], user.json()["version"]) == (email, 1)

    found = poll(lambda: http.get(f"/users?q=zelda {tag}").json(),
                 lambda body: any(hit["id"] == user_id for hit in body["hits"]))
    assert any(hit["id"] == user_id for hit in found["hits"]), (found, pipeline.log_tail())

    updated = command(http, "UpdateUser", user_id, {"name": "Zelda Sayre"})
    assert (updated.status_code, updated.json()["version"]) == (200, 2)
    user = http.get(f"/users/{user_id}?min_version=2&wait={WAIT}")
    assert user.json()["name"] == "Zelda Sayre"
    assert http.get("/stats/users").json()["total"] >= 1

    items = [{"sku": "book-1", "quantity": 2, "unit_price": 1250}]
    order = command(http, "CreateOrder", order_id,
                    {"customer_id": user_id, "items": items, "currency": "EUR"})
    assert order.status_code == 200, order.json()
    paid = command(http, "PayOrder", order_id, {"payment_ref": f"pay-{tag}"})
    assert (paid.status_code, paid.json()["version"]) == (200, 2), paid.json()
    row = http.get(f"/orders/{order_id}?min_version=2&wait={WAIT}").json()
    assert (row["status"], row["total"]) == ("paid", 2500)
    mine = http.get(f"/users/{user_id}/orders").json()
    assert (mine["order_count"], mine["spent"]) == (1, {"EUR": 2500})

    again = command(http, "CreateUser", user_id, {"email": email, "name": "Zelda Again"})
    assert again.status_code == 409
    assert (again.json()["code"], again.json()["version"]) == ("user.already_exists", 2)


def test_submitted_then_read_and_missing(http: TestClient) -> None:
    user_id = f"u-{uuid.uuid4().hex[:6]}"
    response = http.post("/commands/CreateUser",
                         json={"aggregate_id": user_id,
                               "data": {"email": f"{user_id}@example.com", "name": "Ann Lee"}})
    assert response.status_code == 202
    assert response.json()["stream_id"] == f"user-{user_id}"
    assert http.get(f"/users/{user_id}?min_version=1&wait={WAIT}").status_code == 200
    assert http.get("/users/nobody-here").status_code == 404
    late = http.get(f"/users/{user_id}?min_version=9&wait=0.5")
    assert late.status_code == 504
    assert "has not reached version 9" in late.json()["detail"]


def test_client_errors_are_4xx_against_the_real_services(http: TestClient) -> None:
    json_type = {"content-type": "application/json"}
    surrogate = b'{"aggregate_id": "e2e-s", "data": {"email": "s@example.com", "name": "\\ud800"}}'
    assert http.post("/commands/CreateUser?wait=5", content=surrogate,
                     headers=json_type).status_code == 400
    oversized = b'{"aggregate_id": "e2e-s", "data": {}}' + b" " * 70_000
    assert http.post("/commands/CreateUser", content=oversized,
                     headers=json_type).status_code == 413
    assert http.get("/users/a%00b").status_code == 422
    assert http.get("/users/u1?min_version=9223372036854775808").status_code == 422
    assert http.get("/users?q=alice&offset=20000").status_code == 422
