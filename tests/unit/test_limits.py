"""The limits in `topics.limits` hold against the stores: derived keys, SQL columns, the mapping."""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.client import InvalidCommandData, check_command, new_command
from pipeline.domain.aggregates import state_to_data
from pipeline.domain.orders import OrderState
from topics import (
    CommandEnvelope,
    EventEnvelope,
    InvalidEnvelope,
    InvalidStreamId,
    OrderItem,
    Snapshot,
    decode_command,
    encode,
    event_key,
    limits,
    make_stream_id,
    parse_event_key,
)

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "projections" / "migrations"
MAPPING = ROOT / "projections" / "search" / "mapping.json"
NOW = datetime(2024, 5, 1, tzinfo=UTC)
LONGEST_TYPE = "t" * limits.MAX_AGGREGATE_TYPE_LENGTH
LONGEST_ID = "i" * limits.MAX_AGGREGATE_ID_LENGTH
ASTRAL = "\U0001f600"  # four bytes of UTF-8: the worst case for byte bounds


# -- Derived keys -------------------------------------------------------------------------------


def test_the_longest_stream_at_the_highest_version_makes_a_valid_event() -> None:
    stream_id = make_stream_id(LONGEST_TYPE, LONGEST_ID)
    key = event_key(stream_id, limits.MAX_VERSION)
    assert len(stream_id) == limits.MAX_STREAM_ID_LENGTH
    assert len(key) == limits.MAX_EVENT_ID_LENGTH <= limits.MAX_MESSAGE_ID_LENGTH
    envelope = EventEnvelope(
        event_id=key, type="UserCreated", schema_version=1, stream_id=stream_id,
        version=limits.MAX_VERSION, data={}, occurred_at=NOW, causation_id=key,
    )
    assert parse_event_key(envelope.event_id) == (stream_id, limits.MAX_VERSION)
    Snapshot(stream_id=stream_id, aggregate_type=LONGEST_TYPE, version=limits.MAX_VERSION,
             state=None, updated_at=NOW)


@pytest.mark.parametrize("length", [limits.MAX_AGGREGATE_ID_LENGTH + 1, 122, 128])
def test_an_aggregate_id_too_long_for_its_keys_is_refused_at_the_boundary(length: int) -> None:
    # 122-128 characters used to pass the envelope and then break the event id (MessageId).
    with pytest.raises(InvalidEnvelope, match="aggregate_id"):
        decode_command(encode_command(aggregate_id="u" * length))
    with pytest.raises(InvalidStreamId, match=f"1-{limits.MAX_AGGREGATE_ID_LENGTH} characters"):
        make_stream_id("user", "u" * length)


def test_the_client_and_cli_refuse_a_long_id_before_sending() -> None:
    with pytest.raises(InvalidCommandData) as raised:
        new_command("CreateUser", "u" * 65, {"email": "a@example.com", "name": "A"})
    assert raised.value.code == "validation.envelope"
    ok = new_command("CreateUser", "u" * 64, {"email": "a@example.com", "name": "A"})
    check_command(ok)


def test_the_client_refuses_control_characters_with_the_processors_code() -> None:
    command = new_command("CreateUser", "u1", {"email": "a@example.com", "name": "A\x00"})
    with pytest.raises(InvalidCommandData) as raised:
        check_command(command)
    assert raised.value.code == "validation.control_character"


def test_issued_by_refuses_control_characters() -> None:
    with pytest.raises(InvalidEnvelope, match="issued_by"):
        decode_command(encode_command(issued_by="ops\x00"))
    assert decode_command(encode_command(issued_by="ops " + ASTRAL)).issued_by == "ops " + ASTRAL


def encode_command(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "command_id": "c-1", "type": "CreateUser", "aggregate_id": "u1",
        "data": {"email": "a@example.com", "name": "Ada"}, "issued_at": "2024-05-01T00:00:00Z",
    }
    return json.dumps({**fields, **overrides}).encode()


# -- Control characters -------------------------------------------------------------------------


def test_the_control_class_is_exactly_unicode_cc_and_cs() -> None:
    pattern = re.compile(f"[{limits.CONTROL_CHARACTERS}]")
    # ECMA-262's `$` is the end of input; Python's also matches before a final newline.
    schema = re.compile(limits.NO_CONTROL_CHARACTERS_PATTERN.replace("$", r"\Z"))
    for code in range(sys.maxunicode + 1):
        character = chr(code)
        category = unicodedata.category(character)
        assert bool(pattern.match(character)) == (category in ("Cc", "Cs")), hex(code)
        if category != "Cs":  # the schema pattern leaves surrogates out (see its docstring)
            assert bool(schema.match(character)) == (category != "Cc"), hex(code)


@given(st.text(), st.sampled_from(["\x00", "\x1b", "\x7f", "\x85", "\n", "\t", "\ud800"]))
def test_any_text_with_a_control_character_is_refused(text: str, control: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        limits.reject_control_characters(text + control + text)


@given(st.text(st.characters(exclude_categories=("Cc", "Cs"))))
def test_text_without_control_characters_passes_unchanged(text: str) -> None:
    assert limits.reject_control_characters(text) is text


# -- Sizes: the largest valid messages fit their topics -----------------------------------------


def test_the_largest_valid_command_fits_max_command_bytes() -> None:
    items = [{"sku": "s" * limits.MAX_SKU_LENGTH, "quantity": limits.MAX_QUANTITY,
              "unit_price": 10**7 - 1}] * limits.MAX_ITEMS
    data = {"customer_id": LONGEST_ID, "items": items, "currency": "EUR"}
    command = CommandEnvelope(
        command_id="c" * 128, type="CreateOrder", aggregate_id=LONGEST_ID,
        expected_version=limits.MAX_VERSION, data=data, issued_at=NOW,
        issued_by=ASTRAL * limits.MAX_ENVELOPE_TEXT_LENGTH, correlation_id="k" * 128,
    )
    check_command(command)
    assert len(encode(command)) <= limits.MAX_COMMAND_BYTES


def test_the_largest_order_snapshot_fits_max_record_bytes() -> None:
    item = OrderItem(sku="s" * limits.MAX_SKU_LENGTH, quantity=limits.MAX_QUANTITY,
                     unit_price=limits.MAX_UNIT_PRICE)
    text = ASTRAL * limits.MAX_TEXT_LENGTH
    state = OrderState(customer_id=LONGEST_ID, items=(item,) * limits.MAX_ITEMS, currency="EUR",
                       total=limits.MAX_ORDER_TOTAL, payment_ref=text, tracking=text)
    snapshot = Snapshot(
        stream_id=make_stream_id(LONGEST_TYPE, LONGEST_ID), aggregate_type=LONGEST_TYPE,
        version=limits.MAX_VERSION, state=state_to_data(state),
        recent_command_ids=["c" * 128] * limits.RECENT_COMMANDS_WINDOW, updated_at=NOW,
    )
    assert len(encode(snapshot)) <= limits.MAX_RECORD_BYTES


# -- PostgreSQL: the migrations' columns hold every accepted value -------------------------------

TEXT, INTEGER, EXEMPT = "text", "integer", "exempt"
READ_MODEL_COLUMNS: dict[tuple[str, str], tuple[str, int]] = {
    ("users", "id"): (TEXT, limits.READ_MAX_AGGREGATE_ID_LENGTH),
    ("users", "email"): (TEXT, limits.MAX_EMAIL_LENGTH),
    ("users", "name"): (TEXT, limits.MAX_NAME_LENGTH),
    ("users", "active"): (EXEMPT, 0),
    ("users", "created_at"): (EXEMPT, 0),
    ("users", "updated_at"): (EXEMPT, 0),
    ("users", "version"): (INTEGER, limits.MAX_VERSION),
    ("orders", "id"): (TEXT, limits.READ_MAX_AGGREGATE_ID_LENGTH),
    ("orders", "customer_id"): (TEXT, limits.READ_MAX_AGGREGATE_ID_LENGTH),
    ("orders", "items"): (EXEMPT, 0),  # jsonb of skus (id charset) and integers <= 10^12
    ("orders", "total"): (INTEGER, limits.MAX_ORDER_TOTAL),
    ("orders", "currency"): (TEXT, 3),
    ("orders", "status"): (TEXT, len("cancelled")),
    ("orders", "payment_ref"): (TEXT, limits.MAX_TEXT_LENGTH),
    ("orders", "tracking"): (TEXT, limits.MAX_TEXT_LENGTH),
    ("orders", "created_at"): (EXEMPT, 0),
    ("orders", "updated_at"): (EXEMPT, 0),
    ("orders", "version"): (INTEGER, limits.MAX_VERSION),
}
"""Every column of the read models built from commands' values, and the bound it must hold."""
INTEGER_MAXIMA = {"smallint": 2**15 - 1, "integer": 2**31 - 1, "int": 2**31 - 1,
                  "bigint": limits.PG_BIGINT_MAX, "numeric": sys.maxsize**8}


def migrated_columns() -> dict[tuple[str, str], str]:
    """(table, column) -> SQL type after applying every migration in order (CREATE/ALTER)."""
    columns: dict[tuple[str, str], str] = {}
    for path in sorted(MIGRATIONS.glob("*.sql")):
        sql = re.sub(r"--[^\n]*", "", path.read_text("utf-8"))
        for table, body in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)\s*\((.*?)\);", sql,
                                      re.S | re.I):
            for line in re.split(r",\s*\n", body):
                words = line.split()
                if words and words[0].upper() not in ("PRIMARY", "UNIQUE", "CONSTRAINT", "CHECK"):
                    columns[(table, words[0].strip('"'))] = sql_type(words[1:])
        for table, actions in re.findall(r"ALTER TABLE (?:ONLY )?(\w+)\s+(.*?);", sql, re.S | re.I):
            for column, type_words in re.findall(
                r"(?:ADD COLUMN (?:IF NOT EXISTS )?|ALTER COLUMN )\"?(\w+)\"?\s+(?:SET DATA )?"
                r"(?:TYPE )?([^,]+)", actions, re.I,
            ):
                if re.match(r"(?:DROP|SET) (?:NOT NULL|DEFAULT)", type_words, re.I):
                    continue  # a constraint or default changed, not the column's type
                columns[(table, column)] = sql_type(type_words.split())
    return columns


def sql_type(words: list[str]) -> str:
    text = " ".join(words).lower()
    found = re.match(r"(character varying|varchar|char|[a-z]+)\s*(\(\s*\d+\s*\))?", text)
    assert found, text
    return found.group(1) + (found.group(2) or "").replace(" ", "")


def holds(column_type: str, kind: str, bound: int) -> bool:
    if kind == EXEMPT:
        return True
    if kind == INTEGER:
        return INTEGER_MAXIMA.get(column_type, 0) >= bound
    if column_type == "text":
        return True  # unbounded; no NUL can reach it (control characters are refused)
    length = re.fullmatch(r"(?:character varying|varchar|char)\((\d+)\)", column_type)
    return length is not None and int(length.group(1)) >= bound


def test_every_read_model_column_holds_what_the_commands_accept() -> None:
    columns = migrated_columns()
    read_models = {key: value for key, value in columns.items() if key[0] in ("users", "orders")}
    unknown = set(read_models) - set(READ_MODEL_COLUMNS)
    assert not unknown, f"columns without a limit in test_limits.READ_MODEL_COLUMNS: {unknown}"
    for key, (kind, bound) in READ_MODEL_COLUMNS.items():
        assert key in read_models, f"{key} is gone from the migrations"
        assert holds(read_models[key], kind, bound), f"{key} {read_models[key]} cannot hold {bound}"


def test_stream_ids_and_versions_fit_every_table() -> None:
    for (table, column), column_type in migrated_columns().items():
        if column == "stream_id":
            assert holds(column_type, TEXT, limits.READ_MAX_STREAM_ID_LENGTH), (table, column)
        if column == "version":
            assert holds(column_type, INTEGER, limits.MAX_VERSION), (table, column)


def test_the_checker_would_catch_a_narrow_column() -> None:
    assert not holds("integer", INTEGER, limits.MAX_ORDER_TOTAL)
    assert not holds("varchar(100)", TEXT, limits.MAX_NAME_LENGTH)
    assert holds("varchar(200)", TEXT, limits.MAX_NAME_LENGTH)
    assert sql_type(["character", "varying(50)", "NOT", "NULL"]) == "character varying(50)"


# -- Elasticsearch: ids and keyword terms -------------------------------------------------------

KEYWORD_SOURCES = {
    "user_id": (limits.READ_MAX_AGGREGATE_ID_LENGTH, 1),  # (characters, bytes per character)
    "email": (limits.MAX_EMAIL_LENGTH, 1),
    "name.raw": (limits.MAX_NAME_LENGTH, limits.UTF8_MAX_BYTES_PER_CHARACTER),
}


def keyword_fields(properties: dict[str, dict[str, object]], prefix: str = "") -> dict[str, dict]:
    found: dict[str, dict] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if spec.get("type") == "keyword":
            found[path] = spec
        for key in ("properties", "fields"):
            nested = spec.get(key)
            if isinstance(nested, dict):
                found.update(keyword_fields(nested, f"{path}."))
    return found


def test_every_keyword_value_is_indexed_and_fits_a_term() -> None:
    mapping = json.loads(MAPPING.read_text("utf-8"))["mappings"]
    keywords = keyword_fields(mapping["properties"])
    assert set(keywords) == set(KEYWORD_SOURCES), "a keyword field without a limit in this test"
    for path, spec in keywords.items():
        characters, width = KEYWORD_SOURCES[path]
        ignore_above = spec.get("ignore_above")
        assert ignore_above is None or int(str(ignore_above)) >= characters, path
        assert characters * width <= limits.ES_MAX_TERM_BYTES, path
    assert mapping["properties"]["version"]["type"] == "long"  # a signed 64-bit, as MAX_VERSION


def test_document_ids_fit_elasticsearch() -> None:
    # The search projector's document id is the user id (ASCII): bytes == characters.
    longest = "u" * limits.READ_MAX_AGGREGATE_ID_LENGTH
    assert len(longest.encode()) <= limits.ES_MAX_ID_BYTES


@settings(max_examples=50)
@given(st.integers(min_value=limits.MAX_AGGREGATE_ID_LENGTH + 1, max_value=1000))
def test_no_id_beyond_the_bound_passes_any_builder(length: int) -> None:
    with pytest.raises(InvalidStreamId):
        make_stream_id("order", "o" * length)
