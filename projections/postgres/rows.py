"""The guarded row statements, and a batch's rows read and written a table at a time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from projections.postgres.fold import Row, RowKey

PUT_USER = """
INSERT INTO users AS t (id, email, name, active, created_at, updated_at, version)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
    active = EXCLUDED.active, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version
WHERE t.version < EXCLUDED.version"""
PUT_ORDER = """
INSERT INTO orders AS t (id, customer_id, items, total, currency, status, created_at, updated_at,
                         version)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id, items = EXCLUDED.items,
    total = EXCLUDED.total, currency = EXCLUDED.currency, status = EXCLUDED.status,
    updated_at = EXCLUDED.updated_at, version = EXCLUDED.version
WHERE t.version < EXCLUDED.version"""
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
SELECT = {table: f"SELECT {', '.join(columns)} FROM {table} WHERE id = ANY(%s) FOR UPDATE"
          for table, columns in COLUMNS.items()}
"""Locked until the batch commits: no other writer moves a row between the fold and its write."""
KEPT = {"users": {"id", "created_at"}, "orders": {"id", "created_at"}}
"""Columns an upsert of an existing row leaves alone."""


def _upsert(table: str) -> str:
    columns, types = COLUMNS[table], TYPES[table]
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in columns
                        if column not in KEPT[table])
    return (f"INSERT INTO {table} AS t ({', '.join(columns)})"
            f" SELECT * FROM unnest({', '.join(f'%s::{kind}[]' for kind in types)})"
            f" ON CONFLICT (id) DO UPDATE SET {updates} WHERE t.version < EXCLUDED.version")


UPSERT = {table: _upsert(table) for table in COLUMNS}
"""Whole rows, one array per column; at most one row per id (the fold's output)."""


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
    return found


async def write_rows(cursor: psycopg.AsyncCursor[Any], rows: Mapping[RowKey, Row]) -> int:
    """Upsert `rows` whole, guarded by version: one statement per table, the rows passed as one
    array per column (in id order); returns how many rows the guards let through."""
    written = 0
    for table, columns in COLUMNS.items():
        chosen = [row for (name, _), row in sorted(rows.items()) if name == table]
        if chosen:
            arrays = [[_value(row[column], kind) for row in chosen]
                      for column, kind in zip(columns, TYPES[table], strict=True)]
            await cursor.execute(UPSERT[table].encode(), arrays)
            written += cursor.rowcount
    return written


def _value(value: Any, kind: str) -> Any:
    return Jsonb(value) if kind == "jsonb" else value
