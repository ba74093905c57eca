"""The PostgreSQL target: side schemas, and the swap of the live schema in one transaction.

The live projector and the queries name their tables unqualified, so they use the one schema of
their `search_path`: the *live schema* of their topic prefix (`projections.postgres.schema`). A
rebuild fills `<live>__rebuild_<n>` (the migrations applied inside it); the swap renames, in one
transaction, the live schema to `<live>__retired_<n>` and `<live>__rebuild_<n>` to the live
schema's name. Statements resolve names when they start, so every query sees either the whole
old model or the whole new one (PostgreSQL re-plans prepared statements whose search path now
resolves to another schema). Side models are named after their live schema, so listing,
dropping and swapping touch only this prefix's; the target refuses a live schema that another
prefix has claimed.

The live projector's batches take `SWAP_LOCK` shared for their live schema; the swap takes it
exclusive for the same schema, so it waits for the batch in flight and holds the next one back
(and no other prefix's). Holding it, the swap reads the live checkpoints and has the rebuild
catch up to them at least, so that the new schema is never behind what queries saw. After the
commit the live projector's next batch writes to the new tables; the events it re-reads up to
the new checkpoints are skipped by the version guards.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql

from projections.config import PostgresConfig
from projections.postgres.migrate import owner_of
from projections.postgres.schema import schema_dsn, side_model_name, side_model_pattern
from projections.postgres.store import SWAP_LOCK, PostgresStore
from projections.rebuild.target import Model, RebuildError

__all__ = ["LOCK_TIMEOUT", "PostgresTarget", "schema_dsn"]

LOCK_TIMEOUT = "30s"


class PostgresTarget:
    """Side schemas of live schema `schema` in database `dsn`, for the projector named
    `projector` of topic prefix `owner`. Without `schema`, the live schema is the DSN's
    `search_path`'s first existing one (a database of its own)."""

    def __init__(self, dsn: str, projector: str = "postgres", *, schema: str | None = None,
                 owner: str | None = None) -> None:
        self._dsn = dsn if schema is None else schema_dsn(dsn, schema)
        self._base_dsn = dsn
        self._projector = projector
        self._schema, self._owner = schema, owner
        self._live_known: str | None = schema
        """The live schema, as `create` found it: a build's store copies its forget markers."""
        self._connection: psycopg.AsyncConnection[Any] | None = None

    @classmethod
    def live(cls, config: PostgresConfig, projector: str = "postgres") -> PostgresTarget:
        """The target of `config`'s live schema."""
        return cls(config.dsn, projector, schema=config.schema, owner=config.owner)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=10)
        return self._connection

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def live_name(self) -> str:
        """The live schema's name (it may not exist yet: a point-in-time build needs none);
        `RebuildError` if it belongs to another prefix than this target's."""
        connection = await self._connect()
        live = self._schema
        if live is None:
            row = await (await connection.execute("SELECT current_schema()")).fetchone()
            if row is None or row[0] is None:
                raise RebuildError("no schema of the search path exists: nothing live")
            live = str(row[0])
        owner = await owner_of(connection, live)
        if self._owner is not None and owner is not None and owner != self._owner:
            raise RebuildError(f"schema {live!r} belongs to topic prefix {owner!r}, not to "
                               f"{self._owner!r}; set CQRS_PG_SCHEMA to this prefix's schema")
        return live

    async def create(self, kind: str) -> str:
        """A new empty `<live>__<kind>_<n>` schema (`n` one more than any of its models')."""
        connection = await self._connect()
        live = await self.live_name()
        pattern = side_model_pattern(live)
        generation = 1 + max((int(found[2]) for model in await self.models()
                              if (found := pattern.match(model.name))), default=0)
        name = side_model_name(live, kind, generation)
        await connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        self._live_known = live
        return name

    def store(self, name: str) -> PostgresStore:
        """The projector's own store, writing into schema `name` (not waiting for swaps), claimed
        for this target's prefix (so that, swapped in, it still belongs to it), seeded with the
        live schema's forgotten users' markers (it never holds a forgotten user)."""
        return PostgresStore(self._base_dsn, self._projector, schema=name, owner=self._owner,
                             swap_guard=False, forgotten_from=self._live_known)

    async def models(self) -> list[Model]:
        """Every side, retired and point-in-time schema of the live one, with its user and
        order counts (another live schema's are never listed)."""
        connection = await self._connect()
        pattern = side_model_pattern(await self.live_name())
        cursor = await connection.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname ~ %s ORDER BY nspname",
            (pattern.pattern,))
        found = []
        for (name,) in await cursor.fetchall():
            kind = pattern.match(name)[1]  # type: ignore[index]
            found.append(Model(name, kind, await self._count(name, "users"),
                               await self._count(name, "orders")))
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
        """Drop side or retired schema `name` of this live schema (never the live one, never
        another schema, never another live schema's side model)."""
        live = await self.live_name()
        if name == live:
            raise RebuildError(f"{name!r} is the live schema")
        if not side_model_pattern(live).match(name):
            raise RebuildError(f"{name!r} is not a rebuild, retired or point-in-time schema "
                               f"of {live!r}")
        connection = await self._connect()
        await connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))

    async def checkpoints(self, schema: str, topic: str) -> dict[int, int]:
        connection = await self._connect()
        return await _checkpoints(connection, schema, self._projector, topic)

    async def swap(self, name: str, topic: str,
                   catch_up: Callable[[dict[int, int] | None], Awaitable[None]]) -> str:
        """Make schema `name` the live one in one transaction; returns the retired name."""
        live = await self.live_name()
        found = side_model_pattern(live).match(name)
        if found is None or found[1] != "rebuild":
            raise RebuildError(f"{name!r} is not a rebuild schema of {live!r}")
        try:
            return await self._swap(name, topic, catch_up,
                                    side_model_name(live, "retired", int(found[2])))
        except psycopg.errors.LockNotAvailable:
            raise RebuildError(f"the live projector held its batch for over {LOCK_TIMEOUT}; "
                               f"nothing swapped, {name} kept (run the rebuild again)") from None

    async def _swap(self, name: str, topic: str,
                    catch_up: Callable[[dict[int, int] | None], Awaitable[None]],
                    retired: str) -> str:
        connection = await self._connect()
        async with connection.transaction():
            await connection.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            live = await self.live_name()
            if await _missing(connection, live):
                raise RebuildError(f"no live schema {live!r} to replace: start the live "
                                   f"projector (it creates it), then rebuild; {name} kept")
            # The key the live store's batches take shared (`SWAP_LOCK_SHARED`): this schema's.
            await connection.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                                     (SWAP_LOCK, live))
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


async def _missing(connection: psycopg.AsyncConnection[Any], schema: str) -> bool:
    cursor = await connection.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    return await cursor.fetchone() is None


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
