"""PostgreSQL's grants for one topic prefix: its schema migrated and claimed by the owner, then
opened to the projector role (reads and writes rows) and the query role (reads only).

`cqrs services up --secure` makes the roles and the default privileges (every schema and table
the owner creates later is usable at once; `cqrs.services.postgres_roles`); the grants here are
explicit too, so that a schema made before those defaults (or on a database `up` did not make)
gets the same rights. Idempotent: run again, it changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from cqrs.config import Config
from cqrs.services.credentials import RoleFiles
from cqrs.services.postgres_roles import PROJECTOR, QUERY, default_privilege_statements
from cqrs.settings import Settings
from projections.config import PostgresConfig
from projections.postgres.migrate import migrate

Say = Callable[[str], None]
BOOKKEEPING = ("schema_migrations", "schema_owner")
"""The migrator's tables: the projector reads them (is the schema current and ours?), no more."""


class PostgresGrantError(Exception):
    """The grants cannot be made as these settings say (not the owner, no such role)."""


def grant_statements(schema: str) -> list[sql.Composed]:
    """The owner's grants on `schema`: USAGE to both roles; the projector's DML on its tables
    and sequences (the bookkeeping tables read-only); the query role's SELECT."""
    live = sql.Identifier(schema)
    projector, query = sql.Identifier(PROJECTOR), sql.Identifier(QUERY)
    bookkeeping = sql.SQL(", ").join(sql.SQL("{}.{}").format(live, sql.Identifier(table))
                                     for table in BOOKKEEPING)
    return [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}, {}").format(live, projector, query),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}")
        .format(live, projector),
        sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {} TO {}")
        .format(live, projector),
        sql.SQL("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {} FROM {}")
        .format(bookkeeping, projector),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(live, query),
        sql.SQL("GRANT SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(live, query),
    ]


def grant_postgres(settings: Settings, roles: RoleFiles, say: Say) -> None:
    """As the owner (`settings.pg_dsn`, the admin's), migrate and claim the schema of
    `settings.topic_prefix`, then grant the projector and query roles their rights on it."""
    del roles  # the roles' names are fixed (`postgres_roles`); their files hold only DSNs
    asyncio.run(_grant(Config.from_settings(settings).postgres, say))


async def _grant(config: PostgresConfig, say: Say) -> None:
    schema = config.schema
    if schema is None:
        raise PostgresGrantError("no schema for this prefix (CQRS_PG_SCHEMA)")
    connection = await psycopg.AsyncConnection.connect(config.live_dsn, connect_timeout=10)
    async with connection:
        await _check_owner(connection)
        applied = await migrate(connection, schema, config.owner)
        say(f"  postgres: schema {schema!r} claimed by {config.owner!r}, "
            + (f"migrations applied: {', '.join(applied)}" if applied else "migrations current"))
        async with connection.transaction():
            for default in default_privilege_statements(for_owner=False):
                await connection.execute(default.encode())
            for statement in grant_statements(schema):
                await connection.execute(statement)
        say(f"  postgres: {PROJECTOR} reads and writes the read models of {schema!r}, "
            f"{QUERY} reads them")


async def _check_owner(connection: psycopg.AsyncConnection[Any]) -> None:
    """Refuse to go on as anyone but the database's owner, and without both login roles."""
    async with connection.transaction():
        row = await (await connection.execute(
            "SELECT current_user, pg_get_userbyid(datdba) FROM pg_database"
            " WHERE datname = current_database()")).fetchone()
        found = await (await connection.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
            ([PROJECTOR, QUERY],))).fetchall()
    assert row is not None
    user, owner = row
    if user != owner:
        raise PostgresGrantError(
            f"the grants are made by the database's owner {owner!r}, but CQRS_PG_DSN logs in "
            f"as {user!r}: run `cqrs access apply` with the admin's credentials")
    missing = sorted({PROJECTOR, QUERY} - {name for (name,) in found})
    if missing:
        raise PostgresGrantError(
            f"no PostgreSQL role {', '.join(missing)}: `cqrs services up --secure` makes them")
