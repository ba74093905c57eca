"""Apply `projections/migrations/NNNN_*.sql` in order, once each, recorded in `schema_migrations`.

Idempotent and safe to race: all run in one transaction under a transaction-level advisory lock
(per schema: the two-key form, keyed by the schema's name), so two projectors starting together
apply each file exactly once. Tables go to the first schema of the connection's `search_path`.

Given a `schema` (a deployment's live schema, or a rebuild's side model), `migrate` creates it
when missing and, given an `owner` (the topic prefix), records in its `schema_owner` row which
prefix it belongs to: the first to migrate it claims it, and any other prefix is refused with
`SchemaOwned` before anything is written, so two deployments never share read models.

A schema already migrated and claimed by `owner` is left alone, without a single DDL statement
(even `CREATE ... IF NOT EXISTS` needs the right to create): so roles that may not create, the
projector's and the query role's on the secure services, start on a schema the owner migrated
(`cqrs access apply`), and are refused with `NotMigrated`, saying so, on any other.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

MIGRATIONS_LOCK = 0x70726F6A  # "proj": pg_advisory_xact_lock(key, hashtext(schema)) of migrators

OWNER_TABLE = """
CREATE TABLE IF NOT EXISTS schema_owner (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  prefix text NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now())"""


class NotMigrated(Exception):
    """The schema is not migrated (or claimed) for this prefix, and this role may not do it."""

    def __init__(self, schema: str, prefix: str | None, state: str, refusal: str) -> None:
        of = f" of topic prefix {prefix!r}" if prefix is not None else ""
        super().__init__(
            f"PostgreSQL schema {schema!r}{of} {state}, and this role may not migrate it "
            f"(the server said: {refusal}). Run the migrations as the database's owner: "
            "`cqrs access apply` with the admin's credentials for this prefix (it also grants "
            "the projector and query roles their rights), then start this again")
        self.schema, self.prefix, self.state = schema, prefix, state


class SchemaOwned(Exception):
    """The schema belongs to another topic prefix (a deployment's configuration error)."""

    def __init__(self, schema: str, owner: str, prefix: str) -> None:
        super().__init__(
            f"PostgreSQL schema {schema!r} belongs to topic prefix {owner!r}, not to {prefix!r}: "
            "two deployments cannot share read models. Give this one a schema of its own: set "
            "CQRS_PG_SCHEMA to an unused name (created when its projector starts), or unset it "
            "to use the schema derived from the prefix")
        self.schema, self.owner, self.prefix = schema, owner, prefix


def migration_files() -> list[tuple[str, str]]:
    """`(name, sql)` of every packaged migration, in name order."""
    folder = resources.files("projections") / "migrations"
    found = [entry for entry in folder.iterdir() if entry.name.endswith(".sql")]
    return [(entry.name, entry.read_text("utf-8")) for entry in sorted(found, key=lambda e: e.name)]


async def migrate(connection: psycopg.AsyncConnection[Any], schema: str | None = None,
                  owner: str | None = None) -> list[str]:
    """Apply what is missing; returns the names applied now (empty when up to date). With
    `schema` (which must be the connection's `search_path`), create it first if missing; with
    `owner`, claim it or raise `SchemaOwned` (nothing changed then). Up to date and claimed:
    nothing but reads. Otherwise, a role that may not create raises `NotMigrated`."""
    state = await migration_state(connection, schema, owner)
    if state is None:
        return []
    try:
        return await _apply(connection, schema, owner)
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction) as error:
        refusal = error.diag.message_primary or str(error)
        raise NotMigrated(schema or "(search_path)", owner, state, refusal) from error


async def migration_state(connection: psycopg.AsyncConnection[Any], schema: str | None = None,
                          owner: str | None = None) -> str | None:
    """`None` when the schema (the connection's first, without `schema`) holds every migration
    and, given `owner`, is claimed by it; else what it lacks, as a phrase ("does not exist",
    ...). Reads only, in a transaction of its own; `SchemaOwned` if another prefix claimed it."""
    try:
        async with connection.transaction():
            return await _state(connection, schema, owner)
    except psycopg.errors.InsufficientPrivilege as error:
        return f"is not open to this role ({error.diag.message_primary})"


async def _state(connection: psycopg.AsyncConnection[Any], schema: str | None,
                 owner: str | None) -> str | None:
    if schema is None:
        row = await (await connection.execute("SELECT current_schema()")).fetchone()
        if row is None or row[0] is None:
            return "does not exist"
        schema = str(row[0])
    found = await (await connection.execute("SELECT to_regnamespace(%s)",
                                            (_quoted(schema),))).fetchone()
    if found is None or found[0] is None:
        return "does not exist"
    if owner is not None:
        claimed = await owner_of(connection, schema)
        if claimed is None:
            return "is not claimed by any prefix"
        if claimed != owner:
            raise SchemaOwned(schema, claimed, owner)
    table = f"{_quoted(schema)}.schema_migrations"
    found = await (await connection.execute("SELECT to_regclass(%s)", (table,))).fetchone()
    if found is None or found[0] is None:
        return "has no migrations"
    query = sql.SQL("SELECT name FROM {}.schema_migrations").format(sql.Identifier(schema))
    done = {row[0] for row in await (await connection.execute(query)).fetchall()}
    missing = [name for name, _ in migration_files() if name not in done]
    return f"lacks migrations {', '.join(missing)}" if missing else None


async def _apply(connection: psycopg.AsyncConnection[Any], schema: str | None,
                 owner: str | None) -> list[str]:
    applied_now: list[str] = []
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                                 (MIGRATIONS_LOCK, schema or ""))
        if schema is not None:
            await connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        if owner is not None:
            await claim(connection, schema or "(search_path)", owner)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await connection.execute("SELECT name FROM schema_migrations")
        done = {row[0] for row in await cursor.fetchall()}
        for name, text in migration_files():
            if name in done:
                continue
            await connection.execute(text.encode("utf-8"))
            await connection.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
            applied_now.append(name)
    return applied_now


async def claim(connection: psycopg.AsyncConnection[Any], schema: str, owner: str) -> None:
    """Record `owner` as the prefix of the connection's schema unless one is recorded already;
    `SchemaOwned` if that one is another prefix. Inside the caller's transaction."""
    await connection.execute(OWNER_TABLE)
    await connection.execute(
        "INSERT INTO schema_owner (prefix) VALUES (%s) ON CONFLICT DO NOTHING", (owner,))
    row = await (await connection.execute("SELECT prefix FROM schema_owner")).fetchone()
    if row is not None and row[0] != owner:
        raise SchemaOwned(schema, str(row[0]), owner)


async def owner_of(connection: psycopg.AsyncConnection[Any], schema: str) -> str | None:
    """The prefix recorded in `schema` (`None`: none recorded, or no such schema)."""
    found = await (await connection.execute(
        "SELECT to_regclass(%s)", (f"{_quoted(schema)}.schema_owner",))).fetchone()
    if found is None or found[0] is None:
        return None
    query = sql.SQL("SELECT prefix FROM {}.schema_owner").format(sql.Identifier(schema))
    row = await (await connection.execute(query)).fetchone()
    return None if row is None else str(row[0])


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
