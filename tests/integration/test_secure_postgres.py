"""PostgreSQL on the secure services: TLS only, passwords, and each role refused outside its rights.

After `grant_postgres` (what `cqrs access apply` runs for a prefix, as the owner), the projector
role writes the read models through the real store and the query role reads them through the
real read model; the query role may not write a row, neither role may change the schema, and a
plaintext connection or a wrong password is refused by the server, whose own words are asserted.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cqrs.access.postgres import grant_postgres
from cqrs.config import Config
from cqrs.services import Runner
from cqrs.services.credentials import write_secret_file
from cqrs.services.postgres_roles import PROJECTOR, QUERY
from cqrs.services.tls import LocalCA
from projections.config import PostgresConfig
from projections.postgres.migrate import NotMigrated
from projections.postgres.store import PostgresStore
from projections.queries import GetUser, get_user
from projections.runtime.errors import TransientError
from tests.support import secure
from tests.support.events import user_created
from tests.support.secure import SecureStack
from tests.unit.projection_contract import batch

secure_stack = secure.secure_stack  # the session's secure services (a fixture)

ROW = ("INSERT INTO users VALUES ('intruder', 'i@x.io', 'I', true, now(), now(), 1)",
       "UPDATE users SET name = 'changed'", "DELETE FROM users")
DDL = ("CREATE TABLE intruder (id int)", "DROP TABLE users", "ALTER TABLE users ADD COLUMN x int",
       "TRUNCATE users", "CREATE SCHEMA intruder")


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def prefix() -> str:
    return f"sec-{uuid.uuid4().hex[:10]}."


@pytest.fixture
def granted(secure_stack: SecureStack, prefix: str) -> list[str]:
    said: list[str] = []
    grant_postgres(secure_stack.settings("admin", topic_prefix=prefix), secure_stack.roles,
                   said.append)
    return said


def config(stack: SecureStack, role: Any, prefix: str) -> PostgresConfig:
    return Config.from_settings(stack.settings(role, topic_prefix=prefix)).postgres


def connect(stack: SecureStack, role: Any, prefix: str, **changes: Any) -> psycopg.Connection[Any]:
    dsn = make_conninfo(config(stack, role, prefix).live_dsn, **changes)
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


def refusal(connection: psycopg.Connection[Any], statement: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as refused:
        connection.execute(statement.encode())
    return refused.value


def test_the_projector_writes_and_the_query_role_reads(
    secure_stack: SecureStack, prefix: str, granted: list[str], runner: asyncio.Runner
) -> None:
    assert any("migrations applied" in line for line in granted)

    async def scenario() -> None:
        writer = PostgresStore.live(config(secure_stack, "projector-postgres", prefix))
        reader = PostgresStore.live(config(secure_stack, "client", prefix))
        try:
            await writer.start()  # migrated and claimed by the owner: no DDL needed
            applied = await writer.apply(batch([user_created("u1")]))
            assert applied.applied == 1
            assert await writer.checkpoints("t.events") != {}
            await reader.start()  # the query role too: reads only
            user = await get_user(reader, GetUser(id="u1"))
            assert user is not None
            assert user.email == "u1@example.com"
        finally:
            await writer.close()
            await reader.close()
    runner.run(scenario())


def test_the_query_role_may_not_write_a_row(
    secure_stack: SecureStack, prefix: str, granted: list[str], runner: asyncio.Runner
) -> None:
    async def through_the_store() -> None:
        store = PostgresStore.live(config(secure_stack, "client", prefix))
        try:
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction,
                               match="in a read-only transaction"):
                await store.apply(batch([user_created("u2")]))
        finally:
            await store.close()
    runner.run(through_the_store())
    with connect(secure_stack, "client", prefix) as query:
        for statement in ROW:  # read-only transactions by default ...
            error = refusal(query, statement)
            assert isinstance(error, psycopg.errors.ReadOnlySqlTransaction), statement
        query.execute("SET default_transaction_read_only = off")
        for statement in ROW:  # ... and no right to write, whatever the role sets
            error = refusal(query, statement)
            assert isinstance(error, psycopg.errors.InsufficientPrivilege), statement
            assert "permission denied for table users" in str(error)


@pytest.mark.parametrize("role", ["projector-postgres", "client"])
def test_neither_role_may_change_the_schema(
    secure_stack: SecureStack, prefix: str, granted: list[str], role: str
) -> None:
    with connect(secure_stack, role, prefix) as connection:
        connection.execute("SET default_transaction_read_only = off")
        for statement in DDL:
            error = refusal(connection, statement)
            assert isinstance(error, psycopg.errors.InsufficientPrivilege), statement
            assert "permission denied" in str(error) or "must be owner" in str(error)


def test_the_projector_may_not_rewrite_the_bookkeeping(
    secure_stack: SecureStack, prefix: str, granted: list[str]
) -> None:
    with connect(secure_stack, "projector-postgres", prefix) as projector:
        error = refusal(projector, "UPDATE schema_owner SET prefix = 'other.'")
        assert "permission denied for table schema_owner" in str(error)
        error = refusal(projector, "DELETE FROM schema_migrations")
        assert "permission denied for table schema_migrations" in str(error)


def test_an_unmigrated_schema_is_refused_saying_what_to_run(
    secure_stack: SecureStack, prefix: str, runner: asyncio.Runner
) -> None:
    async def scenario() -> None:
        store = PostgresStore.live(config(secure_stack, "projector-postgres", prefix))
        try:
            with pytest.raises(NotMigrated, match="cqrs access apply") as refused:
                await store.start()
        finally:
            await store.close()
        assert "does not exist" in str(refused.value)
        assert "permission denied for database cqrs" in str(refused.value)
        reader = PostgresStore.live(config(secure_stack, "client", prefix))
        try:
            with pytest.raises(TransientError, match=r"missing or not open.*cqrs access apply"):
                await get_user(reader, GetUser(id="u1"))
        finally:
            await reader.close()
    runner.run(scenario())


def test_grants_are_idempotent_and_restore_a_schema_without_them(
    secure_stack: SecureStack, prefix: str, granted: list[str], runner: asyncio.Runner
) -> None:
    schema = config(secure_stack, "admin", prefix).schema
    with connect(secure_stack, "admin", prefix) as owner:  # as if made before the defaults
        owner.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {PROJECTOR}, {QUERY}"
                      .encode())
        owner.execute(f"REVOKE USAGE ON SCHEMA {schema} FROM {PROJECTOR}, {QUERY}".encode())
    with connect(secure_stack, "client", prefix) as query:
        error = refusal(query, f"SELECT * FROM {schema}.users")
        assert f"permission denied for schema {schema}" in str(error)

    async def projector_start() -> None:
        store = PostgresStore.live(config(secure_stack, "projector-postgres", prefix))
        try:
            with pytest.raises(NotMigrated, match=r"is not open to this role.*cqrs access apply"):
                await store.start()
        finally:
            await store.close()
    runner.run(projector_start())
    said: list[str] = []
    for _ in range(2):
        grant_postgres(secure_stack.settings("admin", topic_prefix=prefix), secure_stack.roles,
                       said.append)
    assert any("migrations current" in line for line in said)
    with connect(secure_stack, "client", prefix) as query:
        assert query.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_grants_need_the_owner(secure_stack: SecureStack, prefix: str) -> None:
    settings = secure_stack.settings("projector-postgres", topic_prefix=prefix)
    with pytest.raises(Exception, match=r"database's owner 'cqrs'.*logs in as 'cqrs_projector'"):
        grant_postgres(settings, secure_stack.roles, lambda _: None)


def test_a_plaintext_connection_is_refused(secure_stack: SecureStack, prefix: str) -> None:
    for role in ("admin", "projector-postgres", "client"):
        with pytest.raises(psycopg.OperationalError) as refused:
            connect(secure_stack, role, prefix, sslmode="disable")
        assert "pg_hba.conf rejects connection" in str(refused.value)
        assert "no encryption" in str(refused.value)


def test_a_wrong_password_is_refused(secure_stack: SecureStack, prefix: str) -> None:
    with pytest.raises(psycopg.OperationalError) as refused:
        connect(secure_stack, "client", prefix, password="not-the-password")
    assert f'password authentication failed for user "{QUERY}"' in str(refused.value)


def test_the_server_is_verified_against_the_local_ca(
    secure_stack: SecureStack, prefix: str, tmp_path: Path
) -> None:
    for host in ("127.0.0.1", "localhost"):
        with connect(secure_stack, "client", prefix, host=host) as query:
            row = query.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert row.fetchone() == (True,)
    other = LocalCA(tmp_path / "other-ca")
    other.ensure()
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        connect(secure_stack, "client", prefix, sslrootcert=str(other.cert))


def test_each_role_file_logs_in_as_its_role_over_verified_tls(secure_stack: SecureStack) -> None:
    expected = {"admin": "cqrs", "projector-postgres": PROJECTOR, "client": QUERY}
    for role in ("admin", "processor", "projector-postgres", "projector-search", "managers",
                 "client"):
        dsn = secure_stack.roles.read(role).get("CQRS_PG_DSN")
        if role not in expected:
            assert dsn is None, role
            continue
        assert dsn is not None
        params = conninfo_to_dict(dsn)
        assert params["user"] == expected[role]
        assert params["sslmode"] == "verify-full"
        assert params["sslrootcert"] == str(secure_stack.layout.ca_file)


def test_no_password_in_the_servers_log(secure_stack: SecureStack, prefix: str) -> None:
    with pytest.raises(psycopg.OperationalError):
        connect(secure_stack, "client", prefix, password="not-the-password")
    log = secure_stack.layout.log_file("postgres").read_text()
    for role in ("admin", "projector-postgres", "client"):
        password = conninfo_to_dict(secure_stack.roles.read(role)["CQRS_PG_DSN"])["password"]
        assert isinstance(password, str)
        assert password not in log


def test_a_password_rotates_while_the_server_runs(secure_stack: SecureStack, prefix: str) -> None:
    """A new password in the role's secret file, then `up` (the server runs on): new connections
    need the new password, an open session goes on."""
    secret = secure_stack.layout.credentials_dir / "secrets" / f"postgres-{QUERY}"
    original = secret.read_text()
    old_dsn = secure_stack.roles.read("client")["CQRS_PG_DSN"]
    runner = Runner(secure_stack.layout, ["postgres"])
    open_session = connect(secure_stack, "client", prefix)
    try:
        write_secret_file(secret, "rotated-" + uuid.uuid4().hex + "\n")
        runner.up(lambda _: None)
        assert secure_stack.roles.read("client")["CQRS_PG_DSN"] != old_dsn
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(old_dsn, connect_timeout=5)
        with connect(secure_stack, "client", prefix) as fresh:
            assert fresh.execute("SELECT current_user").fetchone() == (QUERY,)
        assert open_session.execute("SELECT 1").fetchone() == (1,)
    finally:
        open_session.close()
        write_secret_file(secret, original)
        runner.up(lambda _: None)
    assert secure_stack.roles.read("client")["CQRS_PG_DSN"] == old_dsn
