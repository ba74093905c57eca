"""The gateway gets the limits through the command models: long ids, control characters and
oversized totals are answered 422 before anything reaches Kafka."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_gateway import ALICE, Fakes, TestClient, client, fakes
from topics import limits

__all__ = ["client", "fakes"]  # the fixtures, shared with test_gateway


def post(client: TestClient, command_type: str, aggregate_id: str, data: dict[str, Any]) -> Any:
    return client.post(f"/commands/{command_type}",
                       json={"aggregate_id": aggregate_id, "data": data})


def test_a_long_aggregate_id_is_422_and_not_sent(client: TestClient, fakes: Fakes) -> None:
    response = post(client, "CreateUser", "u" * (limits.MAX_AGGREGATE_ID_LENGTH + 1), ALICE)
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "validation.envelope"
    longest = "u" * limits.MAX_AGGREGATE_ID_LENGTH
    assert post(client, "CreateUser", longest, ALICE).status_code == 202
    assert len(fakes.commands.sent) == 1


@pytest.mark.parametrize(
    ("command_type", "data", "error"),
    [
        ("CreateUser", {**ALICE, "name": "Al\x00ice"}, "control_character"),
        ("CancelOrder", {"reason": "x\ny"}, "control_character"),
        ("CreateOrder", {"customer_id": "u1", "currency": "EUR", "items": [
            {"sku": "a", "quantity": 10**6, "unit_price": limits.MAX_UNIT_PRICE}]},
     "total_too_large"),
    ],
)
def test_invalid_data_is_422_with_the_error_type(
    client: TestClient, fakes: Fakes, command_type: str, data: dict[str, Any], error: str
) -> None:
    response = post(client, command_type, "x1", data)
    assert response.status_code == 422
    assert error in {problem["type"] for problem in response.json()["detail"]}
    assert fakes.commands.sent == []


def test_row_ids_are_bounded_by_the_read_side_aggregate_id_limit(client: TestClient) -> None:
    from cqrs.gateway import queries

    assert queries.MAX_VERSION == limits.MAX_VERSION
    longest = "u" * limits.READ_MAX_AGGREGATE_ID_LENGTH
    assert client.get(f"/users/{longest}").status_code == 404
    assert client.get(f"/orders/{longest}").status_code == 404
    too_long = longest + "u"
    assert client.get(f"/users/{too_long}").status_code == 422
    assert client.get(f"/users/{too_long}/orders").status_code == 422
