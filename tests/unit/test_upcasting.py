"""Upcasting chains apply in order, purely, and fail loudly when they cannot reach a version."""

from datetime import UTC, datetime
from typing import Any

import pytest

from topics import (
    UPCASTERS,
    EventEnvelope,
    OrderCreated,
    UpcastError,
    Upcasters,
    UserCreated,
    from_envelope,
)


def envelope(type_name: str, schema_version: int, data: dict[str, Any]) -> EventEnvelope:
    return EventEnvelope(
        event_id="user-u1@1",
        type=type_name,
        schema_version=schema_version,
        stream_id="user-u1",
        version=1,
        data=data,
        occurred_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


def test_chain_applies_every_step_in_order() -> None:
    registry = Upcasters()
    registry.register("Thing", 1, lambda d: {**d, "steps": [*d["steps"], 1]})
    registry.register("Thing", 2, lambda d: {**d, "steps": [*d["steps"], 2]})
    upcast = registry.upcast(envelope("Thing", 1, {"steps": []}), to_version=3)
    assert upcast.schema_version == 3
    assert upcast.data == {"steps": [1, 2]}
    assert registry.current_version("Thing") == 3
    assert registry.current_version("Other") == 1


def test_input_is_never_mutated() -> None:
    registry = Upcasters()

    def mutate(data: dict[str, Any]) -> dict[str, Any]:
        data["added"] = True
        return data

    registry.register("Thing", 1, mutate)
    original = envelope("Thing", 1, {"a": 1})
    registry.upcast(original)
    assert original.data == {"a": 1}


def test_current_event_is_returned_unchanged() -> None:
    current = envelope("Thing", 1, {"a": 1})
    assert Upcasters().upcast(current, to_version=1) is current


def test_newer_than_known_is_an_upcast_error() -> None:
    with pytest.raises(UpcastError, match="needs v2"):
        UPCASTERS.upcast(envelope("UserCreated", 3, {}), to_version=2)


def test_duplicate_and_invalid_registrations_are_refused() -> None:
    registry = Upcasters()
    registry.register("Thing", 1, dict)
    with pytest.raises(ValueError, match="already"):
        registry.register("Thing", 1, dict)
    with pytest.raises(ValueError, match="start at 1"):
        registry.register("Thing", 0, dict)


def test_user_created_v1_full_name_becomes_name() -> None:
    v1 = envelope("UserCreated", 1, {"email": "a@example.com", "full_name": "Ada"})
    assert from_envelope(v1) == UserCreated(email="a@example.com", name="Ada")


def test_order_created_v1_is_in_euros() -> None:
    data = {
        "customer_id": "u1",
        "items": [{"sku": "s", "quantity": 1, "unit_price": 5}],
        "total": 5,
    }
    event = from_envelope(envelope("OrderCreated", 1, data))
    assert isinstance(event, OrderCreated)
    assert event.currency == "EUR"


def test_a_step_failing_on_the_data_is_an_upcast_error() -> None:
    """A v1 event without the field its step reads: an `UpcastError` (poison), not a KeyError."""
    with pytest.raises(UpcastError, match="KeyError"):
        UPCASTERS.upcast(envelope("UserCreated", 1, {"email": "a@b.io"}), to_version=2)
