"""Elasticsearch on the secure services: HTTPS only, a user per role, refused outside its rights.

After `grant_elasticsearch` (what `cqrs access apply` runs for a prefix, as the admin), the search
projector's user starts the real `SearchProjectorStore` (creates its index, alias, state and
forgotten indices) and writes documents through the real store; the query user searches the
alias through the real `UserSearch`. The query user may not write or delete; the projector may
not delete an index, nor create or touch one outside its prefix; plaintext, missing or wrong
credentials and an unknown CA are refused. The server's own words are asserted (plaintext: the
node closes the connection and says why in its log, while the same call over HTTPS succeeds). A
user's secret file edited, `up` puts its new password in force on the running node.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

import pytest
from elasticsearch import (
    AsyncElasticsearch,
    AuthenticationException,
    AuthorizationException,
    ConnectionError,
)

from cqrs.access.elasticsearch import (
    grant_elasticsearch,
    retire_elasticsearch_user,
    rotate_elasticsearch_user,
)
from cqrs.config import Config
from cqrs.services import Runner
from cqrs.services.credentials import write_secret_file
from cqrs.services.elasticsearch import Elasticsearch
from cqrs.services.elasticsearch_realm import secret_name
from projections.config import SearchConfig
from projections.search.client import make_client
from projections.search.index import IndexNames, drop_indices
from projections.search.projector import SearchProjectorStore
from projections.search.query import UserSearch
from projections.search.store import ElasticsearchUserStore
from projections.search.writes import apply_documents
from tests.support.secure import SecureStack
from tests.unit.test_search_documents import envelope
from topics import UserCreated

T = TypeVar("T")
PEOPLE = [envelope("user-u1", 1, UserCreated(email="alice@example.com", name="Alice")),
          envelope("user-u2", 1, UserCreated(email="bob@example.com", name="Bob"))]


def run(search: SearchConfig, work: Callable[[AsyncElasticsearch], Awaitable[T]]) -> T:
    async def main() -> T:
        async with make_client(search, request_timeout=10) as client:
            return await work(client)

    return asyncio.run(main())


def search_config(stack: SecureStack, role: Any, prefix: str) -> SearchConfig:
    return Config.from_settings(stack.settings(role, topic_prefix=prefix)).search


@pytest.fixture(scope="module")
def stack(secure_stack: SecureStack) -> SecureStack:
    return secure_stack


@pytest.fixture(scope="module")
def prefix(stack: SecureStack) -> Iterator[str]:
    """A prefix granted to the search roles, its users index made by the projector's user."""
    chosen = f"sec-{uuid.uuid4().hex[:10]}."
    said: list[str] = []
    grant_elasticsearch(stack.settings("admin", topic_prefix=chosen), stack.roles,
                        said.append)
    assert any("search-projector" in line for line in said), said
    yield chosen
    names = IndexNames.for_prefix(chosen)
    run(search_config(stack, "admin", chosen), lambda client: drop_indices(client, names))


@pytest.fixture(scope="module")
def projector(stack: SecureStack, prefix: str) -> SearchConfig:
    search = search_config(stack, "projector-search", prefix)
    names = IndexNames.for_prefix(prefix)

    async def start_and_write(client: AsyncElasticsearch) -> None:
        store = SearchProjectorStore(make_client(search), names)
        await store.start()  # alias, generation 1, its state index, the forgotten index
        try:
            assert await store.checkpoints(f"{prefix}events") == {}
            await store.parked_streams()
        finally:
            await store.close()
        users = ElasticsearchUserStore(client, names.alias, refresh="wait_for",
                                       forgotten_index=names.forgotten)
        await apply_documents(users, PEOPLE)

    run(search, start_and_write)
    return search


def test_the_projector_creates_its_index_and_writes_documents(projector: SearchConfig,
                                                             prefix: str) -> None:
    names = IndexNames.for_prefix(prefix)

    async def read(client: AsyncElasticsearch) -> list[str]:
        found = await ElasticsearchUserStore(client, names.alias).get_documents(["u1"])
        return [document.name for document in found.values() if document is not None]

    assert run(projector, read) == ["Alice"]


def test_the_query_user_searches_the_alias(stack: SecureStack, prefix: str,
                                           projector: SearchConfig) -> None:
    alias = IndexNames.for_prefix(prefix).alias
    query = search_config(stack, "client", prefix)
    assert query.username == "search-query"
    assert query.api_key is None

    async def search(client: AsyncElasticsearch) -> list[str]:
        # The gateway's readiness check, then a search as `cqrs search` makes it.
        await client.count(index=alias, ignore_unavailable=True)
        result = await UserSearch(client, alias).search_users("alice")
        return [hit.id for hit in result.hits]

    assert run(query, search) == ["u1"]


def refused(search: SearchConfig, work: Callable[[AsyncElasticsearch], Awaitable[Any]]) -> str:
    """The server's reason for refusing `work` (403)."""
    with pytest.raises(AuthorizationException) as caught:
        run(search, work)
    assert caught.value.status_code == 403
    assert caught.value.error == "security_exception"
    assert str(caught.value).startswith("AuthorizationException(403, 'security_exception', "
                                        "'action [")
    return str(caught.value.body["error"]["reason"])  # whole (the str() elides a long one)


def test_the_query_user_may_not_write_or_delete(stack: SecureStack, prefix: str,
                                                projector: SearchConfig) -> None:
    names = IndexNames.for_prefix(prefix)
    query = search_config(stack, "client", prefix)
    reason = refused(query, lambda client: client.index(
        index=names.alias, id="intruder", document={"name": "intruder"}))
    assert "action [indices:data/write/index] is unauthorized for user [search-query]" in reason
    reason = refused(query, lambda client: client.indices.delete(index=names.versioned(1)))
    assert "action [indices:admin/delete] is unauthorized for user [search-query]" in reason
    reason = refused(query, lambda client: client.search(index=names.forgotten))
    assert "action [indices:data/read/search] is unauthorized" in reason


def test_the_projector_may_not_delete_an_index_nor_reach_outside_its_prefix(
        stack: SecureStack, prefix: str, projector: SearchConfig) -> None:
    names = IndexNames.for_prefix(prefix)
    other = IndexNames.for_prefix(f"other-{uuid.uuid4().hex[:8]}.")
    admin = search_config(stack, "admin", prefix)
    run(admin, lambda client: client.indices.create(index=other.versioned(1)))
    try:
        reason = refused(projector, lambda client: client.indices.delete(
            index=names.versioned(1)))
        assert (f"action [indices:admin/delete] is unauthorized for user [{projector.username}]"
                in reason)
        reason = refused(projector, lambda client: client.indices.delete(
            index=other.versioned(1)))
        assert "indices:admin/delete" in reason
        assert other.versioned(1) in reason
        reason = refused(projector, lambda client: client.index(
            index=other.versioned(1), document={"name": "intruder"}))
        assert f"is unauthorized for user [{projector.username}]" in reason
        assert other.versioned(1) in reason
        reason = refused(projector, lambda client: client.indices.create(index="intruder"))
        assert "action [indices:admin/create] is unauthorized" in reason
        reason = refused(projector, lambda client: client.cluster.health())
        assert "action [cluster:monitor/health] is unauthorized" in reason
    finally:
        run(admin, lambda client: client.indices.delete(index=other.versioned(1)))


def test_plaintext_is_refused(stack: SecureStack, prefix: str) -> None:
    admin = search_config(stack, "admin", prefix)
    plaintext = replace(admin, url=admin.url.replace("https://", "http://"))
    assert plaintext.url.startswith("http://")
    log = stack.layout.log_file("elasticsearch")
    before = log.stat().st_size
    # The same call over HTTPS, to the same port, succeeds: the refusal is not a node down.
    assert run(admin, lambda client: client.cluster.health())["status"] in ("green", "yellow")
    # Connected, then closed by the node (not refused: "Cannot connect to host").
    with pytest.raises(ConnectionError, match="Server disconnected"):
        run(plaintext, lambda client: client.cluster.health())
    expected = "received plaintext http traffic on an https channel, closing connection"
    deadline = time.monotonic() + 10
    while expected not in log.read_bytes()[before:].decode(errors="replace"):
        assert time.monotonic() < deadline, f"no {expected!r} in {log}"
        time.sleep(0.2)


def test_a_certificate_of_another_ca_is_refused(stack: SecureStack, prefix: str) -> None:
    untrusting = replace(search_config(stack, "admin", prefix), ca_certs=None)
    with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        run(untrusting, lambda client: client.cluster.health())


@pytest.mark.parametrize("credentials", [
    {"username": None, "password": None},
    {"password": "not-the-password"},
    {"username": None, "api_key": "bm90LWFuLWlkOm5vdC1hLWtleQ=="},
], ids=["none", "wrong-password", "unknown-api-key"])
def test_wrong_or_missing_credentials_are_refused(stack: SecureStack, prefix: str,
                                                  credentials: dict[str, Any]) -> None:
    search = replace(search_config(stack, "projector-search", prefix), **credentials)
    with pytest.raises(AuthenticationException) as caught:
        run(search, lambda client: client.search(index=IndexNames.for_prefix(prefix).alias))
    assert caught.value.status_code == 401
    assert caught.value.error == "security_exception"
    assert "not-the-password" not in str(caught.value)


def test_the_service_health_is_read_over_https_as_the_admin(stack: SecureStack) -> None:
    health = Elasticsearch(stack.layout, None).health()
    assert health is not None
    assert health["status"] in ("green", "yellow")


def test_a_password_is_rotated_while_the_old_one_still_works(stack: SecureStack, prefix: str,
                                                             projector: SearchConfig) -> None:
    """The projector keeps working on its old user until it restarts with the new one; once
    the old user is retired, it is refused."""
    admin = stack.settings("admin", topic_prefix=prefix)
    alias = IndexNames.for_prefix(prefix).alias
    said: list[str] = []
    old = rotate_elasticsearch_user(admin, stack.roles, "projector-search", said.append)
    assert old == projector.username
    rotated = search_config(stack, "projector-search", prefix)
    assert rotated.username != old
    assert rotated.password != projector.password
    for each in (projector, rotated):  # both work meanwhile, with the role's privileges
        run(each, lambda client: client.count(index=alias))
    retire_elasticsearch_user(admin, stack.roles, old, said.append)
    with pytest.raises(AuthenticationException):
        run(projector, lambda client: client.count(index=alias))
    run(rotated, lambda client: client.count(index=alias))
    assert not any(rotated.password in line or str(projector.password) in line for line in said)


def test_up_puts_a_changed_secret_in_force(stack: SecureStack, prefix: str,
                                           projector: SearchConfig) -> None:
    """The query user's secret file edited, `up` (the node running) rewrites the users file,
    waits until the node accepts the new password, and only then names it in the role's file;
    the old password is refused."""
    alias = IndexNames.for_prefix(prefix).alias
    old = search_config(stack, "client", prefix)
    assert old.username is not None
    new_password = f"changed-{uuid.uuid4().hex}"
    write_secret_file(stack.roles.directory / "secrets" / secret_name(old.username),
                      new_password + "\n")
    said: list[str] = []
    Runner(stack.layout, ["elasticsearch"]).up(said.append)
    assert not any(new_password in line for line in said), said
    new = search_config(stack, "client", prefix)
    assert (new.username, new.password) == (old.username, new_password)
    run(new, lambda client: client.count(index=alias))
    with pytest.raises(AuthenticationException):
        run(old, lambda client: client.count(index=alias))
