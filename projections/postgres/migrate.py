"""Apply `projections/migrations/NNNN_*.sql` in order, once each, recorded in `schema_migrations`.

Idempotent and safe to race: all run in one transaction under a transaction-level advisory lock,
so two projectors starting together apply each file exactly once. Tables go to the first schema
of the connection's `search_path`.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import psycopg

MIGRATIONS_LOCK = 0x70726F6A  # "proj": pg_advisory_xact_lock key shared by every migrator


def migration_files() -> list[tuple[str, str]]:
    """`(name, sql)` of every packaged migration, in name order."""
    folder = resources.files("projections") / "migrations"
    found = [entry for entry in folder.iterdir() if entry.name.endswith(".sql")]
    return [(entry.name, entry.read_text("utf-8")) for entry in sorted(found, key=lambda e: e.name)]


async def migrate(connection: psycopg.AsyncConnection[Any]) -> list[str]:
    """Apply what is missing; returns the names applied now (empty when up to date)."""
    applied_now: list[str] = []
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATIONS_LOCK,))
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await connection.execute("SELECT name FROM schema_migrations")
        done = {row[0] for row in await cursor.fetchall()}
        for name, sql in migration_files():
            if name in done:
                continue
            await connection.execute(sql.encode("utf-8"))
            await connection.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
            applied_now.append(name)
    return applied_now
