"""Validated value types of messages: email, person name, currency, text, money, ids, items.

Every bound comes from `topics.limits` (derived from what the read models can store), and each
type states it in its JSON Schema as well, so a client validating against docs/schemas sends
nothing the processor will refuse for size or characters. Open-charset text (names, free text)
refuses control characters with `control_character`; closed-charset values (email, currency,
ids, skus) refuse them through their pattern, with their usual codes.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from topics._limits import (
    AGGREGATE_ID_PATTERN,
    CURRENCY_PATTERN,
    MAX_EMAIL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_ORDER_TOTAL,
    MAX_QUANTITY,
    MAX_TEXT_LENGTH,
    MAX_UNIT_PRICE,
    NO_CONTROL_CHARACTERS_PATTERN,
    PG_BIGINT_MAX,
    SKU_PATTERN,
    reject_control_characters,
    reject_unstorable,
)

__all__ = [
    "Amount",
    "Currency",
    "Email",
    "MinorUnits",
    "OrderItem",
    "PersonName",
    "Quantity",
    "ReferenceId",
    "Sku",
    "StoredMoney",
    "StoredText",
    "Text",
    "order_total",
]

_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
_CURRENCY = re.compile(CURRENCY_PATTERN)


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _email(value: str) -> str:
    email = value.lower()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(email):
        raise PydanticCustomError("invalid_email", "not a valid email address")
    return email


def _name(value: str) -> str:
    if not value:
        raise PydanticCustomError("invalid_name", "the name is empty")
    reject_control_characters(value)
    if len(value) > MAX_NAME_LENGTH:
        raise PydanticCustomError(
            "invalid_name", "the name is longer than {limit} characters", {"limit": MAX_NAME_LENGTH}
        )
    return value


def _currency(value: str) -> str:
    if not _CURRENCY.fullmatch(value):
        raise PydanticCustomError("invalid_currency", "not an ISO 4217 code (3 capital letters)")
    return value


def _text(value: str) -> str:
    if not value:
        raise PydanticCustomError("empty_text", "the text is empty")
    reject_control_characters(value)
    if len(value) > MAX_TEXT_LENGTH:
        raise PydanticCustomError(
            "text_too_long", "longer than {limit} characters", {"limit": MAX_TEXT_LENGTH}
        )
    return value


Email = Annotated[
    str,
    Field(json_schema_extra={"format": "email", "maxLength": MAX_EMAIL_LENGTH}),
    BeforeValidator(_strip),
    AfterValidator(_email),
]
"""An email address, trimmed and lower-cased (ASCII only)."""
PersonName = Annotated[
    str,
    Field(
        json_schema_extra={
            "minLength": 1,
            "maxLength": MAX_NAME_LENGTH,
            "pattern": NO_CONTROL_CHARACTERS_PATTERN,
        }
    ),
    BeforeValidator(_strip),
    AfterValidator(_name),
]
"""A non-empty trimmed name of at most 200 characters, without control characters."""
Currency = Annotated[
    str,
    Field(json_schema_extra={"pattern": CURRENCY_PATTERN}),
    BeforeValidator(_strip),
    AfterValidator(_currency),
]
"""An ISO 4217 currency code such as `EUR` (format checked, not the list of codes)."""
Text = Annotated[
    str,
    Field(
        json_schema_extra={
            "minLength": 1,
            "maxLength": MAX_TEXT_LENGTH,
            "pattern": NO_CONTROL_CHARACTERS_PATTERN,
        }
    ),
    BeforeValidator(_strip),
    AfterValidator(_text),
]
"""Free text (reasons, references, tracking numbers): trimmed, 1-500 characters, no control
characters (tabs and line breaks included: every such text is a single line in a read model)."""
MinorUnits = Annotated[int, Field(ge=0, le=MAX_UNIT_PRICE, strict=True)]
"""A unit price in the currency's minor unit (cents): exact, no floats."""
Amount = Annotated[int, Field(ge=0, le=MAX_ORDER_TOTAL, strict=True)]
"""An order-sized amount in minor units (a payment): at most `topics.limits.MAX_ORDER_TOTAL`."""
Quantity = Annotated[int, Field(gt=0, le=MAX_QUANTITY, strict=True)]
ReferenceId = Annotated[str, Field(pattern=AGGREGATE_ID_PATTERN)]
"""Another aggregate's id: the same bound as the envelopes' `aggregate_id`, so it can address
any stream a command can create."""
Sku = Annotated[str, Field(pattern=SKU_PATTERN)]

StoredText = Annotated[str, AfterValidator(reject_unstorable)]
"""Text in an event: whatever every read model can store (`topics.limits.reject_unstorable`).
Looser than the command types on purpose: see `topics.limits.UNSTORABLE_CHARACTERS`."""
StoredMoney = Annotated[int, Field(ge=0, le=PG_BIGINT_MAX, strict=True)]
"""An amount in an event: what PostgreSQL's `bigint` holds."""


class OrderItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    quantity: Quantity
    unit_price: MinorUnits


def order_total(items: tuple[OrderItem, ...]) -> int:
    """Sum of quantity * unit price, in minor units."""
    return sum(item.quantity * item.unit_price for item in items)
