"""The PostgreSQL target: side schemas, and the swap of the live schema in one transaction.

The live projector and the queries name their tables unqualified, so they use the first schema of
their `search_path` (normally `public`): the *live schema*. A rebuild fills `rebuild_<n>` (the
migrations applied inside it); the swap renames, in one transaction, the live schema to
`retired_<n>` and `rebuild_<n>` to the live schema's name. Statements resolve names when they
start, so every query sees either the whole old model or the whole new one (PostgreSQL re-plans
prepared statements whose search path now resolves to another schema).

The live projector's batches take `SWAP_LOCK` shared; the swap takes it exclusive, so it waits
for the batch in flight and holds the next one back. Holding it, the swap reads the live
checkpoints and has the rebuild catch up to them at least, so that the new schema is never
behind what queries saw. After the commit the live projector's next batch writes to the new
tables; the events it re-reads up to the new checkpoints are skipped by the version guards.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from projections.postgres.store import SWAP_LOCK, PostgresStore
from projections.rebuild.target import Model, RebuildError

MODEL_NAME = re.compile(r"^(rebuild|retired|pit)_(\d+)$")
LOCK_TIMEOUT = "30s"


def schema_dsn(dsn: str, schema: str) -> str:
    """`dsn` with `search_path` set to `schema` only."""
    return make_conninfo(dsn, options=f"-csearch_path={schema}")


class PostgresTarget:
    """Side schemas of one database, for the projector named `projector`."""

    def __init__(self, dsn: str, projector: str = "postgres") -> None:
        self._dsn = dsn
        self._projector = projector
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=10)
        return self._connection

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def live_name(self) -> str:
        connection = await self._connect()
        row = await (await connection.execute("SELECT current_schema()")).fetchone()
        if row is None or row[0] is None:
            raise RebuildError("no schema of the search path exists: nothing live to replace")
        return str(row[0])

    async def create(self, kind: str) -> str:
        """A new empty `<kind>_<n>` schema (`n` one more than any model's)."""
        connection = await self._connect()
        names = [model.name for model in await self.models()]
        generation = 1 + max((int(MODEL_NAME.match(n)[2]) for n in names  # type: ignore[index]
                              if MODEL_NAME.match(n)), default=0)
        name = f"{kind}_{generation}"
        await connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        return name

    def store(self, name: str) -> PostgresStore:
        """The projector's own store, writing into schema `name` (not waiting for swaps)."""
        return PostgresStore(schema_dsn(self._dsn, name), self._projector, swap_guard=False)

    async def models(self) -> list[Model]:
        """Every side and retired schema, with its user and order counts."""
        connection = await self._connect()
        cursor = await connection.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname ~ %s ORDER BY nspname",
            (MODEL_NAME.pattern,))
        found = []
        for (name,) in await cursor.fetchall():
            found.append(Model(name, MODEL_NAME.match(name)[1],  # type: ignore[index]
                               await self._count(name, "users"), await self._count(name, "orders")))
        return found

    async def _count(self, schema: str, table: str) -> int | None:
        connection = await self._connect()
        qualified = f"{schema}.{table}"
        row = await (await connection.execute("SELECT to_regclass(%s)", (qualified,))).fetchone()
        if row is None or row[0] is None:
            return None
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table))
        counted = await (await connection.execute(query)).fetchone()
        return int(counted[0]) if counted else None

    async def drop(self, name: str) -> None:
        """Drop side or retired schema `name` (never the live one, never another schema)."""
        if not MODEL_NAME.match(name):
            raise RebuildError(f"{name!r} is not a rebuild, retired or point-in-time schema")
        if name == await self.live_name():
            raise RebuildError(f"{name!r} is the live schema")
        connection = await self._connect()
        await connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))

    async def checkpoints(self, schema: str, topic: str) -> dict[int, int]:
        connection = await self._connect()
        return await _checkpoints(connection, schema, self._projector, topic)

    async def swap(self, name: str, topic: str,
                   catch_up: Callable[[dict[int, int] | None], Awaitable[None]]) -> str:
        """Make schema `name` the live one in one transaction; returns the retired name."""
        generation = MODEL_NAME.match(name)[2]  # type: ignore[index]
        try:
            return await self._swap(name, topic, catch_up, f"retired_{generation}")
        except psycopg.errors.LockNotAvailable:
            raise RebuildError(f"the live projector held its batch for over {LOCK_TIMEOUT}; "
                               f"nothing swapped, {name} kept (run the rebuild again)") from None

    async def _swap(self, name: str, topic: str,
                    catch_up: Callable[[dict[int, int] | None], Awaitable[None]],
                    retired: str) -> str:
        connection = await self._connect()
        async with connection.transaction():
            await connection.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (SWAP_LOCK,))
            live = await self.live_name()
            live_checkpoints = await _checkpoints(connection, live, self._projector, topic)
            await catch_up({p: offset + 1 for p, offset in live_checkpoints.items()})
            rebuilt = await _checkpoints(connection, name, self._projector, topic)
            behind = sorted(p for p, offset in live_checkpoints.items()
                            if rebuilt.get(p, -1) < offset)
            if behind:
                raise RebuildError(f"{name} is behind the live model on partitions {behind}")
            rename = sql.SQL("ALTER SCHEMA {} RENAME TO {}")
            await connection.execute(rename.format(sql.Identifier(live), sql.Identifier(retired)))
            await connection.execute(rename.format(sql.Identifier(name), sql.Identifier(live)))
        return retired


async def _checkpoints(connection: psycopg.AsyncConnection[Any], schema: str, projector: str,
                       topic: str) -> dict[int, int]:
    table = f"{schema}.projection_checkpoints"
    row = await (await connection.execute("SELECT to_regclass(%s)", (table,))).fetchone()
    if row is None or row[0] is None:
        return {}
    query = sql.SQL('SELECT partition, "offset" FROM {}.projection_checkpoints'
                    " WHERE projector = %s AND topic = %s").format(sql.Identifier(schema))
    cursor = await connection.execute(query, (projector, topic))
    return {int(p): int(offset) for p, offset in await cursor.fetchall()}
