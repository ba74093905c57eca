"""Hypothesis strategies drawn from the published JSON Schemas (docs/schemas), as any client would
read them: every value a strategy draws is valid for its schema, and nothing else is assumed.

Covers the keywords the project's schemas use: type, properties, required, additionalProperties,
anyOf, enum, $ref/$defs, minLength/maxLength/pattern/format (email, date-time) for strings,
minimum/maximum/exclusiveMinimum for integers, items/minItems/maxItems for arrays.
"""

from __future__ import annotations

import json
from datetime import UTC
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=20),
    st.floats(allow_nan=False, allow_infinity=False))


@cache
def load(name: str) -> dict[str, Any]:
    """The published schema `docs/schemas/<name>.json`."""
    document: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text("utf-8"))
    return document


def from_schema(name: str) -> st.SearchStrategy[Any]:
    """Values valid for the published schema `name` (`CreateUser`, `CommandEnvelope`, ...)."""
    schema = load(name)
    return _strategy(schema, schema)


def property_of(name: str, field: str) -> st.SearchStrategy[Any]:
    """Values valid for one property of the published schema `name`."""
    schema = load(name)
    return _strategy(schema["properties"][field], schema)


def _strategy(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "$ref" in schema:
        target = schema["$ref"].removeprefix("#/$defs/")
        return _strategy(root["$defs"][target], root)
    if "anyOf" in schema:
        return st.one_of([_strategy(option, root) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return _integer(schema)
    if kind == "string":
        return _string(schema)
    if kind == "array":
        items = _strategy(schema.get("items", {}), root) if schema.get("items") else JSON_SCALARS
        return st.lists(items, min_size=schema.get("minItems", 0),
                        max_size=schema.get("maxItems", 10))
    if kind == "object":
        return _object(schema, root)
    return JSON_SCALARS


def _integer(schema: dict[str, Any]) -> st.SearchStrategy[int]:
    low = schema.get("minimum")
    if "exclusiveMinimum" in schema:
        low = schema["exclusiveMinimum"] + 1
    high = schema.get("maximum")
    if "exclusiveMaximum" in schema:
        high = schema["exclusiveMaximum"] - 1
    # Unbounded sides reach past 64 bits: a schema without a bound promises nothing smaller.
    return st.integers(low if low is not None else -(2**70), high if high is not None else 2**70)


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    fmt = schema.get("format")
    if fmt == "date-time":
        return st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat())
    if "pattern" in schema:
        drawn = st.from_regex(schema["pattern"], fullmatch=True)
    elif fmt == "email":
        drawn = st.emails()
    else:
        return st.text(min_size=low, max_size=high if high is not None else 300)
    return drawn.filter(lambda text: low <= len(text) and (high is None or len(text) <= high))


def _object(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    if not properties:
        if schema.get("additionalProperties") is False:
            return st.just({})
        return st.dictionaries(st.text(max_size=10), JSON_SCALARS, max_size=3)
    return st.fixed_dictionaries(
        {name: _strategy(sub, root) for name, sub in properties.items() if name in required},
        optional={name: _strategy(sub, root) for name, sub in properties.items()
                  if name not in required})
