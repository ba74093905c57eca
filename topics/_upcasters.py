"""Upcasting steps for domain events: pure functions from one schema version's data to the next."""

from __future__ import annotations

from typing import Any


def user_created_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 named the field `full_name`; v2 calls it `name`."""
    upgraded = {key: value for key, value in data.items() if key != "full_name"}
    upgraded["name"] = data["full_name"]
    return upgraded


def order_created_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 had no currency: every order was in euros."""
    return {**data, "currency": "EUR"}
