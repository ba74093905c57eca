"""The committed JSON Schemas match the models."""

from pathlib import Path

import pytest

from pipeline.domain.aggregates import parse_command
from pipeline.domain.common import Rejection
from topics import SCHEMA_DIRECTORY, limits, render_schema, schema_documents, write_schemas


def test_committed_schemas_match_the_models() -> None:
    expected = {name: render_schema(schema) for name, schema in schema_documents().items()}
    committed = {path.name: path.read_text("utf-8") for path in SCHEMA_DIRECTORY.glob("*.json")}
    assert committed == expected, "docs/schemas is stale: run python -m topics.schemas"


def test_write_is_stable_and_removes_stale_files(tmp_path: Path) -> None:
    (tmp_path / "Gone.json").write_text("{}\n")
    first = {path.name: path.read_text() for path in write_schemas(tmp_path)}
    second = {path.name: path.read_text() for path in write_schemas(tmp_path)}
    assert first == second
    assert not (tmp_path / "Gone.json").exists()
    assert all(text.endswith("}\n") for text in first.values())
    assert {"CommandEnvelope.json", "CreateUser.json", "OrderCreated.json"} <= set(first)


# -- The schemas state the limits of topics.limits, so any Kafka client can check before sending -

DOCUMENTS = schema_documents()


def test_the_schemas_state_the_limits() -> None:
    envelope = DOCUMENTS["CommandEnvelope.json"]["properties"]
    assert envelope["aggregate_id"]["pattern"] == limits.AGGREGATE_ID_PATTERN
    assert f"{{1,{limits.MAX_AGGREGATE_ID_LENGTH}}}" in envelope["aggregate_id"]["pattern"]
    name = DOCUMENTS["CreateUser.json"]["properties"]["name"]
    assert name["maxLength"] == limits.MAX_NAME_LENGTH
    assert name["pattern"] == limits.NO_CONTROL_CHARACTERS_PATTERN
    order = DOCUMENTS["CreateOrder.json"]
    item = order["$defs"]["OrderItem"]["properties"]
    assert item["unit_price"]["maximum"] == limits.MAX_UNIT_PRICE
    assert item["quantity"]["maximum"] == limits.MAX_QUANTITY
    assert order["properties"]["items"]["maxItems"] == limits.MAX_ITEMS
    assert order["properties"]["items"]["x-max-total"] == limits.MAX_ORDER_TOTAL
    assert str(limits.MAX_ORDER_TOTAL) in order["description"]
    assert order["properties"]["customer_id"]["pattern"] == limits.AGGREGATE_ID_PATTERN
    amount = DOCUMENTS["PayOrder.json"]["properties"]["amount"]["anyOf"][0]
    assert amount["maximum"] == limits.MAX_ORDER_TOTAL
    for document, field in [("DeactivateUser.json", "reason"), ("ShipOrder.json", "tracking"),
                            ("PayOrder.json", "payment_ref"), ("CancelOrder.json", "reason")]:
        text = DOCUMENTS[document]["properties"][field]
        text = text.get("anyOf", [text])[0]
        assert text["pattern"] == limits.NO_CONTROL_CHARACTERS_PATTERN, (document, field)
        assert text["maxLength"] == limits.MAX_TEXT_LENGTH, (document, field)


LONG_ID = "u" * (limits.MAX_AGGREGATE_ID_LENGTH + 1)
CASES = [
    ("CreateUser", {"email": "a@example.com", "name": "Ada"}),
    ("CreateUser", {"email": "a@example.com", "name": "A" * limits.MAX_NAME_LENGTH}),
    ("CreateUser", {"email": "a@example.com", "name": "A" * (limits.MAX_NAME_LENGTH + 1)}),
    ("CreateUser", {"email": "a@example.com", "name": "A\x00da"}),
    ("CreateUser", {"email": "a@example.com", "name": "A\x1bda"}),
    ("DeactivateUser", {"reason": "r\x7f"}),
    ("PayOrder", {"payment_ref": "p", "amount": limits.MAX_ORDER_TOTAL}),
    ("PayOrder", {"payment_ref": "p", "amount": limits.MAX_ORDER_TOTAL + 1}),
    ("CancelOrder", {"reason": "x" * (limits.MAX_TEXT_LENGTH + 1)}),
    ("CreateOrder", {"customer_id": LONG_ID, "currency": "EUR",
                     "items": [{"sku": "a", "quantity": 1, "unit_price": 1}]}),
    ("CreateOrder", {"customer_id": "u1", "currency": "EUR",
                     "items": [{"sku": "a", "quantity": 1, "unit_price": limits.MAX_UNIT_PRICE}]}),
]


@pytest.mark.parametrize(("command_type", "data"), CASES)
def test_the_schema_and_the_model_agree_at_the_limits(
    command_type: str, data: dict[str, object]
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_ok = jsonschema.Draft202012Validator(DOCUMENTS[f"{command_type}.json"]).is_valid(data)
    model_ok = not isinstance(parse_command(command_type, data), Rejection)
    assert schema_ok == model_ok


def test_a_long_aggregate_id_fails_the_envelope_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(DOCUMENTS["CommandEnvelope.json"])
    envelope = {"command_id": "c", "type": "CreateUser", "issued_at": "2024-01-01T00:00:00Z"}
    assert validator.is_valid({**envelope, "aggregate_id": "u" * limits.MAX_AGGREGATE_ID_LENGTH})
    assert not validator.is_valid({**envelope, "aggregate_id": LONG_ID})
    assert not validator.is_valid({**envelope, "aggregate_id": "u1", "issued_by": "x\x00"})
