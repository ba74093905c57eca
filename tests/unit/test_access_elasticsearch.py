"""The search roles' privileges per prefix (merged, rendered), the file realm's password hashes,
and how `make_client` authenticates: no Elasticsearch needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from cqrs.access.elasticsearch import (
    PREFIXES_RECORD,
    PROJECTOR,
    QUERY,
    granted_prefixes,
    merged_prefixes,
    projector_names,
    roles_yaml,
)
from cqrs.services.credentials import RoleFiles
from cqrs.services.elasticsearch_realm import (
    SEARCH_USERS,
    add_user,
    credentials_of,
    pbkdf2_hash,
    pbkdf2_verify,
    remove_user,
    role_credentials,
    user_of,
    write_users,
)
from projections.config import SearchConfig
from projections.search.client import connection_options


def test_a_new_prefix_is_merged_into_those_granted_before() -> None:
    assert merged_prefixes([], "a.") == ["a."]
    assert merged_prefixes(["b.", "a."], "c.") == ["a.", "b.", "c."]
    assert merged_prefixes(["a.", "b."], "a.") == ["a.", "b."]  # a repeated grant: same set


def test_a_descriptor_covers_every_prefix_whatever_the_order_of_grants() -> None:
    one = PROJECTOR.descriptor(["a.", "b."])
    assert one == PROJECTOR.descriptor(["b.", "a.", "b."])
    names = one["indices"][0]["names"]
    assert {"a.users", "a.users-forgotten", "b.users", "b.users-forgotten"} <= set(names)
    assert len(names) == len(set(names)) == 6
    assert one["cluster"] == []
    assert one["metadata"] == {"cqrs_prefixes": ["a.", "b."]}
    assert "delete_index" not in one["indices"][0]["privileges"]
    assert "manage" not in one["indices"][0]["privileges"]  # it holds delete_index


def test_the_query_role_reads_the_aliases_only() -> None:
    descriptor = QUERY.descriptor(["a.", "T2-x."])
    assert descriptor["indices"] == [{"names": ["a.users", "t2-x.users"], "privileges": ["read"]}]
    assert descriptor["cluster"] == []


def test_no_prefix_no_index() -> None:
    assert PROJECTOR.descriptor([])["indices"] == []


def test_the_generations_pattern_matches_its_prefix_only() -> None:
    # Lucene's regular expressions agree with Python's on this subset (escapes, classes, ?).
    pattern = re.compile(projector_names("a.")[2].strip("/"))
    for name in ("a.users-v1", "a.users-v12", "a.users-v3-pit", "a.users-v3-state",
                 "a.users-v3-pit-state"):
        assert pattern.fullmatch(name), name
    for name in ("a.users", "a.users-forgotten", "axusers-v1", "a.users-v", "a.users-vx",
                 "b.users-v1", "a.users-v1-other", "a.users-v1.users-v1"):
        assert not pattern.fullmatch(name), name


def test_the_roles_file_is_yaml_of_the_descriptors() -> None:
    parsed = yaml.safe_load(roles_yaml(["a.", "b."]))
    assert parsed == {
        PROJECTOR.role_name: PROJECTOR.descriptor(["a.", "b."]),
        QUERY.role_name: QUERY.descriptor(["a.", "b."]),
    }
    assert yaml.safe_load(roles_yaml([]))[QUERY.role_name]["indices"] == []


def test_the_granted_prefixes_are_read_back(tmp_path: Path) -> None:
    assert granted_prefixes(tmp_path) == []
    (tmp_path / PREFIXES_RECORD).write_text(json.dumps(["a.", "b."]))
    assert granted_prefixes(tmp_path) == ["a.", "b."]


def test_a_pbkdf2_hash_verifies_its_password_only() -> None:
    hashed = pbkdf2_hash("s3cret")
    assert hashed.startswith("{PBKDF2}10000$")
    assert "s3cret" not in hashed
    assert pbkdf2_verify("s3cret", hashed)
    assert not pbkdf2_verify("other", hashed)
    assert not pbkdf2_verify("s3cret", "")
    assert hashed != pbkdf2_hash("s3cret")  # salted


def test_the_users_file_keeps_a_hash_that_still_matches(tmp_path: Path) -> None:
    roles = RoleFiles(tmp_path / "credentials")
    config = tmp_path / "config"
    config.mkdir()
    write_users(config, roles)
    first = (config / "users").read_text()
    write_users(config, roles)
    assert (config / "users").read_text() == first
    assert (config / "users").stat().st_mode & 0o777 == 0o600
    assert (config / "users_roles").read_text() == (
        "cqrs-search-projector:search-projector\ncqrs-search-query:search-query\n")
    for role, values in role_credentials(roles).items():
        assert values["CQRS_ES_USERNAME"] == SEARCH_USERS[role][0]
        assert values["CQRS_ES_PASSWORD"] not in first


def test_make_client_prefers_an_api_key_and_verifies_https_with_the_ca() -> None:
    both = connection_options(SearchConfig("https://h:9200", api_key="k", username="u",
                                           password="p", ca_certs="/ca.pem"))
    assert both["api_key"] == "k"
    assert both["basic_auth"] is None
    assert both["ca_certs"] == "/ca.pem"
    assert both["verify_certs"] is True
    user = connection_options(SearchConfig("https://h:9200", username="u", password="p"))
    assert user["basic_auth"] == ("u", "p")
    assert user["api_key"] is None
    plain = connection_options(SearchConfig("http://h:9200", ca_certs="/ca.pem"))
    assert plain["ca_certs"] is None
    assert plain["basic_auth"] is None


def test_the_password_is_never_shown() -> None:
    assert "p4ss" not in repr(SearchConfig("https://h", username="u", password="p4ss"))


def test_a_rotation_adds_a_user_of_the_same_role_and_retiring_removes_the_old(
        tmp_path: Path) -> None:
    roles = RoleFiles(tmp_path / "credentials")
    config = tmp_path / "config"
    config.mkdir()
    write_users(config, roles)
    new = add_user(config, roles, "projector-search")
    assert new.startswith("search-projector-")
    members = sorted(["search-projector", new])
    assert f"cqrs-search-projector:{','.join(members)}\n" in (config / "users_roles").read_text()
    roles.set("projector-search", credentials_of(roles, new))
    assert user_of(roles, "projector-search") == new
    write_users(config, roles)  # a later `up` keeps both until the old one is retired
    assert {"search-projector", new, "search-query"} == {
        line.split(":")[0] for line in (config / "users").read_text().splitlines()}
    remove_user(config, roles, "search-projector")
    assert "search-projector:" not in (config / "users").read_text()
    assert (config / "users_roles").read_text() == (
        f"cqrs-search-projector:{new}\ncqrs-search-query:search-query\n")
    assert not (roles.directory / "secrets" / "elasticsearch-search-projector").exists()
    write_users(config, roles)  # and does not bring the retired one back
    assert "search-projector:" not in (config / "users").read_text()
