"""The rows as PostgreSQL holds them: read a batch's rows, write evolved rows behind the guard.

What a row becomes is decided by `fold.evolve_row` alone; these statements write that whole row
(every column but the id) and add only the version guard, `WHERE t.version < EXCLUDED.version`,
so a row never moves backwards whoever else writes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from projections.postgres.fold import (
    Row,
    RowKey,
    customer_key,
    is_forgotten,
    marker_row,
    row_key,
)
from projections.postgres.projector import Forget, RowOp

COLUMNS = {
    "users": ("id", "email", "name", "active", "created_at", "updated_at", "version"),
    "orders": ("id", "customer_id", "items", "total", "currency", "status", "payment_ref",
               "tracking", "created_at", "updated_at", "version"),
}
TYPES = {
    "users": ("text", "text", "text", "boolean", "timestamptz", "timestamptz", "bigint"),
    "orders": ("text", "text", "jsonb", "bigint", "text", "text", "text", "text", "timestamptz",
               "timestamptz", "bigint"),
}
SELECT = {table: f"SELECT {', '.join(columns)} FROM {table} WHERE id = ANY(%b) FOR UPDATE"
          for table, columns in COLUMNS.items()}
"""Locked until the batch commits: no other writer moves a row between the fold and its write.
Arrays go in binary (`%b`): psycopg writes a text array through Python quoting, about 10 µs per
row of seven columns, and a binary one in about 1.4."""


def _guarded_upsert(table: str, source: str) -> str:
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in COLUMNS[table]
                        if column != "id")
    return (f"INSERT INTO {table} AS t ({', '.join(COLUMNS[table])}) {source}"
            f" ON CONFLICT (id) DO UPDATE SET {updates} WHERE t.version < EXCLUDED.version")


UPSERT = {table: _guarded_upsert(table, "SELECT * FROM unnest({})".format(
    ", ".join(f"%b::{kind}[]" for kind in TYPES[table]))) for table in COLUMNS}
"""Whole rows, one binary array per column (see `SELECT`); at most one row per id (the fold's
output)."""
UPSERT_ROW = {table: _guarded_upsert(table, "VALUES ({})".format(
    ", ".join("%s" for _ in COLUMNS[table]))) for table in COLUMNS}
"""One whole row, its values in `COLUMNS` order."""
FORGOTTEN_SELECT = ("SELECT id, version, forgotten_at FROM forgotten_users WHERE id = ANY(%b)"
                    " FOR UPDATE")
FORGET = """
WITH marked AS (
    INSERT INTO forgotten_users AS f (id, version, forgotten_at)
    SELECT * FROM unnest(%b::text[], %b::bigint[], %b::timestamptz[])
    ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, forgotten_at = EXCLUDED.forgotten_at
    WHERE f.version < EXCLUDED.version
    RETURNING id
), erased AS (
    DELETE FROM users WHERE id = ANY(%b::text[])
)
SELECT count(*) FROM marked"""
"""Forget users: the marker, guarded by version like every write, and the row deleted (whatever
the guard said: nothing of a forgotten user stays), in one statement; counts the markers the
guard let through."""
UNLINK = "UPDATE orders SET customer_id = NULL WHERE customer_id = ANY(%b)"
"""Forgotten users' orders lose their customer (those of this batch too: written before)."""
PUT_USER = UPSERT_ROW["users"]
"""`UPSERT_ROW["users"]` under the name `bench/sinks.py` still imports (a baseline of its own)."""


USER_LOCK = 0x75736572  # "user": pg_advisory_xact_lock(key, hashtext(schema:user id))
LOCK_USERS = """
SELECT CASE WHEN erase THEN pg_advisory_xact_lock(%s, hashtext(current_schema() || ':' || id))
            ELSE pg_advisory_xact_lock_shared(%s, hashtext(current_schema() || ':' || id)) END
FROM unnest(%b::text[], %b::boolean[]) AS t(id, erase) ORDER BY id"""
"""One lock per user a transaction writes, reads as a customer, or forgets, taken in id order
(no deadlock between batches): shared to write, exclusive to forget. A forget therefore never
runs beside another writer of the user (a zombie member's late batch, a second instance
creating an order for the customer on another partition), each of which reads the marker or
the row only once the other has committed."""


async def lock_users(cursor: psycopg.AsyncCursor[Any], operations: Iterable[RowOp]) -> None:
    """Take `LOCK_USERS` for the users `operations` write, forget or read as customers."""
    users: dict[str, bool] = {}
    for operation in operations:
        for table, row_id in (row_key(operation), customer_key(operation) or ("", "")):
            if table == "users":
                users[row_id] = users.get(row_id, False) or isinstance(operation, Forget)
    if users:
        ids = sorted(users)
        await cursor.execute(LOCK_USERS.encode(),
                             (USER_LOCK, USER_LOCK, ids, [users[i] for i in ids]))


async def read_rows(
    cursor: psycopg.AsyncCursor[Any], keys: Iterable[RowKey]
) -> dict[RowKey, Row]:
    """The current rows of `keys`, locked (one `SELECT` per table touched); missing rows are
    absent."""
    ids: dict[str, list[str]] = {}
    for table, row_id in keys:
        ids.setdefault(table, []).append(row_id)
    found: dict[RowKey, Row] = {}
    for table, wanted in sorted(ids.items()):
        await cursor.execute(SELECT[table].encode(), (wanted,))
        for values in await cursor.fetchall():
            found[(table, values[0])] = dict(zip(COLUMNS[table], values, strict=True))
    if "users" in ids:
        await cursor.execute(FORGOTTEN_SELECT.encode(), (ids["users"],))
        for user_id, version, forgotten_at in await cursor.fetchall():
            found[("users", user_id)] = marker_row(user_id, version, forgotten_at)
    return found


async def write_rows(cursor: psycopg.AsyncCursor[Any], rows: Mapping[RowKey, Row]) -> int:
    """Upsert `rows` whole, guarded by version: one statement per table, the rows passed as one
    array per column (in id order); returns how many rows the guards let through."""
    written = 0
    for table, columns in COLUMNS.items():
        chosen = [row for (name, _), row in sorted(rows.items())
                  if name == table and not is_forgotten(row)]
        if chosen:
            arrays = [[_value(row[column], kind) for row in chosen]
                      for column, kind in zip(columns, TYPES[table], strict=True)]
            await cursor.execute(UPSERT[table].encode(), arrays)
            written += cursor.rowcount
    forgotten = [row for _, row in sorted(rows.items()) if is_forgotten(row)]
    if forgotten:
        written += await _forget(cursor, forgotten)
    return written


async def _forget(cursor: psycopg.AsyncCursor[Any], forgotten: list[Row]) -> int:
    """Write forgotten users' markers (see `FORGET`), after the batch's orders."""
    ids = [row["id"] for row in forgotten]
    await cursor.execute(FORGET.encode(), (ids, [row["version"] for row in forgotten],
                                           [row["forgotten_at"] for row in forgotten], ids))
    marked = await cursor.fetchone()
    await cursor.execute(UNLINK.encode(), (ids,))
    return int(marked[0]) if marked else 0


async def write_row(cursor: psycopg.AsyncCursor[Any], key: RowKey, row: Row) -> bool:
    """Upsert one whole row, guarded by version; `True` when the guard let it through."""
    if is_forgotten(row):
        return await _forget(cursor, [row]) > 0
    table = key[0]
    values = [_value(row[column], kind) for column, kind in zip(COLUMNS[table], TYPES[table],
                                                                 strict=True)]
    await cursor.execute(UPSERT_ROW[table].encode(), values)
    return cursor.rowcount > 0


def _value(value: Any, kind: str) -> Any:
    return Jsonb(value) if kind == "jsonb" else value
