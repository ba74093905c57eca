"""Validated value types for commands: email, person name, currency, free text, money."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 254
MAX_TEXT_LENGTH = 500

_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _email(value: str) -> str:
    email = value.lower()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise PydanticCustomError("invalid_email", "not a valid email address")
    return email


def _name(value: str) -> str:
    if not value:
        raise PydanticCustomError("invalid_name", "the name is empty")
    if len(value) > MAX_NAME_LENGTH:
        raise PydanticCustomError(
            "invalid_name", "the name is longer than {limit} characters", {"limit": MAX_NAME_LENGTH}
        )
    return value


def _currency(value: str) -> str:
    if not _CURRENCY.match(value):
        raise PydanticCustomError("invalid_currency", "not an ISO 4217 code (3 capital letters)")
    return value


def _text(value: str) -> str:
    if not value:
        raise PydanticCustomError("empty_text", "the text is empty")
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
"""An email address, trimmed and lower-cased."""
PersonName = Annotated[
    str,
    Field(json_schema_extra={"minLength": 1, "maxLength": MAX_NAME_LENGTH}),
    BeforeValidator(_strip),
    AfterValidator(_name),
]
"""A non-empty trimmed name of at most 200 characters."""
Currency = Annotated[
    str,
    Field(json_schema_extra={"pattern": "^[A-Z]{3}$"}),
    BeforeValidator(_strip),
    AfterValidator(_currency),
]
"""An ISO 4217 currency code such as `EUR` (format checked, not the list of codes)."""
Text = Annotated[
    str,
    Field(json_schema_extra={"minLength": 1, "maxLength": MAX_TEXT_LENGTH}),
    BeforeValidator(_strip),
    AfterValidator(_text),
]
"""Free text (reasons, references, tracking numbers): trimmed, 1-500 characters."""
MinorUnits = Annotated[int, Field(ge=0, le=10**12, strict=True)]
"""An amount of money in the currency's minor unit (cents): exact, no floats."""
Quantity = Annotated[int, Field(gt=0, le=1_000_000, strict=True)]
ReferenceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
"""Another aggregate's id (same charset as `topics.envelopes.AggregateId`)."""
