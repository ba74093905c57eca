"""The live schema of a topic prefix: readable, deterministic, injective, within PostgreSQL's
identifier limit with room for the rebuild suffixes; and the explicit override."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from cqrs.config import Config
from cqrs.settings import Settings
from projections.config import PostgresConfig
from projections.postgres.schema import (
    IDENTIFIER_LIMIT,
    MAX_SCHEMA,
    SchemaNameError,
    check_schema,
    schema_for_prefix,
    side_model_name,
    side_model_pattern,
)

# What Kafka allows in a topic name, so in a prefix.
PREFIXES = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
                   min_size=1, max_size=200)
HASHED = re.compile(r"^[a-z][a-z0-9_]*__[0-9a-f]{8}$")


@pytest.mark.parametrize(("prefix", "schema"), [
    ("cqrs.", "cqrs"),
    ("test-ab12.", "test_ab12"),
    ("e2e-0123456789.", "e2e_0123456789"),
    ("shop-eu-west.", "shop_eu_west"),
])
def test_a_plain_prefix_maps_to_its_words_joined_by_underscores(prefix: str, schema: str) -> None:
    assert schema_for_prefix(prefix) == schema


@pytest.mark.parametrize("prefix", [
    "Cqrs.", "test_ab12.", "a.b.", "cqrs", "cqrs..", "1abc.", "pg-catalog.", "public.",
    "information-schema.", "-a.", "a--b.", "." , "...", "x" * 60 + ".",
])
def test_any_other_prefix_gets_a_readable_base_and_a_hash(prefix: str) -> None:
    name = schema_for_prefix(prefix)
    assert HASHED.match(name), name
    assert not name.startswith("pg_")
    assert len(name) <= MAX_SCHEMA


def test_prefixes_that_read_alike_get_different_schemas() -> None:
    alike = ["test-ab12.", "test_ab12.", "test.ab12.", "Test-ab12.", "test-ab12", "TEST-AB12."]
    assert len({schema_for_prefix(prefix) for prefix in alike}) == len(alike)


def test_a_long_prefix_is_cut_and_two_that_share_the_cut_part_still_differ() -> None:
    first, second = "a" * 80 + "-one.", "a" * 80 + "-two."
    assert schema_for_prefix(first) != schema_for_prefix(second)
    assert len(schema_for_prefix(first)) <= MAX_SCHEMA
    assert schema_for_prefix(first).startswith("a" * 20)


@given(PREFIXES)
def test_every_prefix_maps_to_a_usable_live_schema(prefix: str) -> None:
    name = schema_for_prefix(prefix)
    assert name == schema_for_prefix(prefix)  # deterministic
    assert check_schema(name) == name  # what an explicit CQRS_PG_SCHEMA must be, too
    assert len(side_model_name(name, "retired", 10**10 - 1).encode()) <= IDENTIFIER_LIMIT


@given(PREFIXES, PREFIXES)
def test_two_prefixes_share_a_schema_only_if_equal_or_hashes_collide(a: str, b: str) -> None:
    if a != b and schema_for_prefix(a) == schema_for_prefix(b):
        assert HASHED.match(schema_for_prefix(a))  # 32 bits of SHA-256 alike: never seen


@pytest.mark.parametrize(("name", "why"), [
    ("Public", "lower-case identifier"),
    ("1abc", "lower-case identifier"),
    ("a-b", "lower-case identifier"),
    ("", "lower-case identifier"),
    ("x" * (MAX_SCHEMA + 1), "at most"),
    ("pg_mine", "PostgreSQL keeps"),
    ("information_schema", "PostgreSQL keeps"),
    ("cqrs__rebuild_3", "side model"),
    ("cqrs__retired_1", "side model"),
])
def test_an_explicit_schema_that_cannot_be_live_is_refused(name: str, why: str) -> None:
    with pytest.raises(SchemaNameError, match=why):
        check_schema(name)


def test_side_models_are_named_after_their_live_schema_and_listed_only_with_it() -> None:
    assert side_model_name("cqrs", "rebuild", 3) == "cqrs__rebuild_3"
    mine = side_model_pattern("cqrs")
    assert (found := mine.match("cqrs__retired_12")) is not None
    assert (found[1], found[2]) == ("retired", "12")
    for other in ("cqrs_eu__rebuild_1", "rebuild_1", "retired_2", "pit_3", "cqrs",
                  "cqrs__rebuild_1__retired_2", "xcqrs__pit_1", "cqrs__pit_"):
        assert mine.match(other) is None, other
    # another live schema whose name starts like a side model of this one never matches it
    assert side_model_pattern("cqrs__pit_1").match("cqrs__pit_1__rebuild_1") is not None
    assert mine.match("cqrs__pit_1__rebuild_1") is None
    with pytest.raises(ValueError, match="kind"):
        side_model_name("cqrs", "old", 1)


def test_the_composition_root_puts_the_prefix_schema_on_the_search_path() -> None:
    config = Config.from_settings(Settings(pg_dsn="postgresql://u:pw@db/cqrs",
                                           topic_prefix="test-ab12.", pg_schema=None))
    assert (config.postgres.schema, config.postgres.owner) == ("test_ab12", "test-ab12.")
    assert config.postgres.dsn == "postgresql://u:pw@db/cqrs"  # the database, for admin work
    live = conninfo_to_dict(config.postgres.live_dsn)
    assert (live["options"], live["dbname"], live["password"]) == (
        "-csearch_path=test_ab12", "cqrs", "pw")
    assert "pw" not in repr(config.postgres)


def test_an_explicit_schema_overrides_the_derived_one() -> None:
    config = Config.from_settings(Settings(pg_dsn="postgresql://db/cqrs", topic_prefix="cqrs.",
                                           pg_schema="public"))
    assert (config.postgres.schema, config.postgres.owner) == ("public", "cqrs.")
    assert conninfo_to_dict(config.postgres.live_dsn)["options"] == "-csearch_path=public"


def test_settings_refuse_an_unusable_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CQRS_PG_SCHEMA", "Not-A-Schema")
    with pytest.raises(ValueError, match="lower-case identifier"):
        Settings()
    with pytest.raises(SchemaNameError):
        PostgresConfig("postgresql://db/cqrs", schema="pg_toast")


def test_without_a_schema_the_dsn_is_used_as_it_is() -> None:
    assert PostgresConfig("postgresql://db/x").live_dsn == "postgresql://db/x"
