"""SearchUsers request bodies: fixed fields, user text never parsed as query syntax."""

from __future__ import annotations

from typing import Any

import pytest

from projections.search.errors import InvalidSearch
from projections.search.index import IndexNames, load_mapping, sanitise_prefix
from projections.search.query import build_search


def keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {key for value in node.values() for key in keys(value)}
    if isinstance(node, list):
        return {key for value in node for key in keys(value)}
    return set()


@pytest.mark.parametrize("text", ["alice", "name:* OR (", 'a" AND b~2 /x/ \\', "  "])
def test_user_text_never_reaches_a_query_parser(text: str) -> None:
    body = build_search(text)
    assert not keys(body) & {"query_string", "simple_query_string", "regexp", "wildcard"}


def test_fuzzy_and_prefix_clauses_are_present() -> None:
    clauses = build_search("alice")["query"]["bool"]["should"]
    kinds = {clause["multi_match"]["type"] for clause in clauses if "multi_match" in clause}
    assert kinds == {"best_fields", "bool_prefix"}
    assert any(clause.get("multi_match", {}).get("fuzziness") == "AUTO" for clause in clauses)


def test_active_only_filters_and_paging_passes_through() -> None:
    body = build_search("ali", limit=5, offset=10, active_only=True)
    assert body["query"]["bool"]["filter"] == [{"term": {"active": True}}]
    assert (body["from"], body["size"]) == (10, 5)


def test_blank_text_lists_by_name() -> None:
    assert build_search("")["query"] == {"match_all": {}}


@pytest.mark.parametrize(
    ("text", "limit", "offset"),
    [("x" * 201, 10, 0), ("a", 0, 0), ("a", 101, 0), ("a", 10, -1), ("a", 10, 9995)],
)
def test_out_of_range_parameters_are_refused(text: str, limit: int, offset: int) -> None:
    with pytest.raises(InvalidSearch):
        build_search(text, limit=limit, offset=offset)


def test_index_names_fold_a_sanitised_prefix() -> None:
    assert sanitise_prefix("cqrs.") == "cqrs."
    assert sanitise_prefix("Test-AB/c*?.") == "test-ab_c__."
    assert sanitise_prefix("_.-x") == "x"
    names = IndexNames.for_prefix("Test-1.")
    assert (names.alias, names.versioned(1)) == ("test-1.users", "test-1.users-v1")


def test_mapping_ships_the_agreed_fields() -> None:
    body = load_mapping()
    properties = body["mappings"]["properties"]
    assert body["settings"]["index"]["refresh_interval"] == "1s"
    assert properties["name"]["index_prefixes"]
    assert properties["name"]["fields"]["raw"]["type"] == "keyword"
    assert properties["email"]["type"] == "keyword"
    assert properties["email"]["fields"]["text"]["type"] == "text"
    assert {properties[field]["type"] for field in ("created_at", "updated_at")} == {"date"}
    assert properties["version"]["type"] == "long"
    assert properties["active"]["type"] == "boolean"
