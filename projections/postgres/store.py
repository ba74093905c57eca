"""`PostgresStore`: the runtime's `Store` and the queries' `ReadModel`, on one psycopg connection.

One transaction per batch: the guarded row writes, the parked records, the blocked streams and
the checkpoints commit together, all or none, so a crash anywhere replays from the last
committed checkpoint and the version guards make the replay change nothing. Every row written is
the one `fold.evolve_row` computed: the batch folded per row in memory (`fold`), then each changed
row written once (a few round trips per batch, not one per event). Faults that a retry can cure
(connection refused or lost, admin shutdown, too many connections, serialization failure,
deadlock) become `TransientError` and the connection is dropped; bad data for one event
(`POISON`, raised while projecting it, evolving or writing its rows) becomes `PoisonEvent`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from projections.config import PostgresConfig
from projections.postgres.fold import (
    FoldFailed,
    customer_key,
    evolve_row,
    fold,
    row_key,
    unlinked,
)
from projections.postgres.migrate import migrate
from projections.postgres.models import Order, User, UserStats, period_starts
from projections.postgres.projector import RowOp, project
from projections.postgres.rows import lock_users, read_rows, write_row, write_rows
from projections.postgres.schema import schema_dsn
from projections.runtime.errors import PoisonEvent, TransientError
from projections.runtime.records import Applied, Batch, Item, SourceRecord
from topics import InvalidHistory

TRANSIENT = (
    psycopg.OperationalError, psycopg.InterfaceError, psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected)
POISON = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded,
          InvalidHistory, ValueError, OverflowError)
"""What one event's data makes PostgreSQL or its adaptation refuse, every time: a value out of a
column's range (bigint), NUL in text or `\u0000` in jsonb, text not encodable (`ValueError`
covers `UnicodeEncodeError`), a violated constraint, a row over a PostgreSQL limit (index row
too big: `ProgramLimitExceeded`, an `OperationalError` caught here before `TRANSIENT` is), an
impossible history."""

CHECKPOINT = """
INSERT INTO projection_checkpoints (projector, topic, partition, "offset") VALUES (%s, %s, %s, %s)
ON CONFLICT (projector, topic, partition)
DO UPDATE SET "offset" = EXCLUDED."offset", updated_at = now()"""
PARK = """
INSERT INTO projection_parked (projector, topic, partition, "offset", stream_id, key, value)
VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"""
BLOCK = """
INSERT INTO projection_blocked_streams (projector, stream_id, topic, partition, "offset")
VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"""
SWAP_LOCK = 0x72656275  # "rebu": pg_advisory_xact_lock(key, hashtext(live schema)) of a swap
"""Each batch transaction takes it shared for its live schema, so a swap of that schema
(exclusive, `projections.rebuild.postgres`) never lands mid-batch, and a swap of another
prefix's schema never holds the batch back (the two-key form: one lock per schema name)."""
SWAP_LOCK_SHARED = ("SELECT pg_advisory_xact_lock_shared("
                    "%s, hashtext(coalesce(%s::text, current_schema()::text)))")


class _ItemFailed(Exception):
    def __init__(self, index: int, cause: BaseException) -> None:
        self.index, self.cause = index, cause


class _Replay(Exception):
    """The folded batch cannot be written as it is: roll back, apply it again item by item."""


class PostgresStore:
    """The postgres projector's store, in schema `schema` of database `dsn` (created and claimed
    for topic prefix `owner` by `start`); without `schema`, in the first schema of the DSN's
    own `search_path` (`dsn` may carry `options=-csearch_path=...`)."""

    def __init__(self, dsn: str, projector: str = "postgres", *, schema: str | None = None,
                 owner: str | None = None, swap_guard: bool = True,
                 forgotten_from: str | None = None) -> None:
        self._forgotten_from = forgotten_from
        self._dsn = dsn if schema is None else schema_dsn(dsn, schema)
        self._projector = projector
        self._schema, self._owner = schema, owner
        self._swap_guard = swap_guard  # False only for a rebuild's own store (it must not wait)
        self._connection: psycopg.AsyncConnection[Any] | None = None

    @classmethod
    def live(cls, config: PostgresConfig, projector: str = "postgres") -> PostgresStore:
        """The store of `config`'s live schema (the projector's, the queries', the tools')."""
        return cls(config.dsn, projector, schema=config.schema, owner=config.owner)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = await psycopg.AsyncConnection.connect(self._dsn, connect_timeout=5)
        return self._connection

    async def _drop(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(psycopg.Error):
                await connection.close()

    async def _guarded(self, operation: Any) -> Any:
        try:
            return await operation(await self._connect())
        except TRANSIENT as error:
            await self._drop()
            raise TransientError(f"{type(error).__name__}: {error}") from error

    async def start(self) -> None:
        """Create the schema if missing, claim it (`SchemaOwned` if another prefix has) and
        apply the migrations, unless it is up to date and claimed already (then no DDL at all:
        a role that may not create starts there, and is refused with `NotMigrated` anywhere
        else); then, given `forgotten_from` (a rebuild's store: the live schema), copy its
        forgotten users' markers, so that no build ever holds a forgotten user, even from a log
        not yet compacted (docs/erasure.md)."""
        await self._guarded(lambda connection: migrate(connection, self._schema, self._owner))
        if self._forgotten_from is not None:
            await self._guarded(self._copy_forgotten)

    async def _copy_forgotten(self, connection: psycopg.AsyncConnection[Any]) -> None:
        live = self._forgotten_from
        assert live is not None
        source = f"{live}.forgotten_users"
        async with connection.transaction():
            found = await (await connection.execute("SELECT to_regclass(%s)", (source,))).fetchone()
            if found is None or found[0] is None:
                return
            await connection.execute(sql.SQL(
                "INSERT INTO forgotten_users SELECT * FROM {}.forgotten_users"
                " ON CONFLICT (id) DO NOTHING").format(sql.Identifier(live)))

    async def close(self) -> None:
        await self._drop()

    async def checkpoints(self, topic: str) -> dict[int, int]:
        async def read(connection: psycopg.AsyncConnection[Any]) -> dict[int, int]:
            async with connection.transaction():
                cursor = await connection.execute(
                    'SELECT partition, "offset" FROM projection_checkpoints'
                    " WHERE projector = %s AND topic = %s", (self._projector, topic))
                return {row[0]: row[1] for row in await cursor.fetchall()}
        result: dict[int, int] = await self._guarded(read)
        return result

    async def parked_streams(self) -> set[str]:
        async def read(connection: psycopg.AsyncConnection[Any]) -> set[str]:
            async with connection.transaction():
                cursor = await connection.execute(
                    "SELECT stream_id FROM projection_blocked_streams WHERE projector = %s",
                    (self._projector,))
                return {row[0] for row in await cursor.fetchall()}
        result: set[str] = await self._guarded(read)
        return result

    async def apply(self, batch: Batch) -> Applied:
        """Folded first (a few statements per batch); item by item (each row operation: read the
        row, evolve it, one guarded upsert) when the batch holds poison or a row moved under the
        fold, so that the `PoisonEvent` index and the counts are those of applying the items one
        by one. Atomic: on any exception nothing of the batch is written."""
        try:
            try:
                result: Applied = await self._guarded(lambda conn: self._apply(conn, batch))
            except _Replay:
                result = await self._guarded(lambda conn: self._apply(conn, batch, folded=False))
        except _ItemFailed as failed:
            raise PoisonEvent(failed.index, failed.cause) from failed.cause
        return result

    async def _apply(
        self, connection: psycopg.AsyncConnection[Any], batch: Batch, *, folded: bool = True
    ) -> Applied:
        async with connection.transaction(), connection.cursor() as cursor:
            if self._swap_guard:
                await cursor.execute(SWAP_LOCK_SHARED, (SWAP_LOCK, self._schema))
            if folded:
                applied = await _apply_folded(cursor, batch.items)
            else:
                applied = 0
                for index, item in enumerate(batch.items):
                    applied += await self._apply_item(cursor, index, item)
            name = self._projector
            if batch.parked:
                await cursor.executemany(PARK, [
                    (name, r.topic, r.partition, r.offset, stream_id, r.key, r.value)
                    for stream_id, r in batch.parked])
            if batch.blocked:
                await cursor.executemany(BLOCK, [
                    (name, stream_id, r.topic, r.partition, r.offset)
                    for stream_id, r in batch.blocked])
            if batch.released:
                await _unblock(cursor, name, batch.released)
            await cursor.executemany(CHECKPOINT, [
                (name, topic, partition, offset)
                for (topic, partition), offset in batch.checkpoints.items()])
        return Applied(applied=applied, skipped=len(batch.items) - applied)

    async def _apply_item(self, cursor: psycopg.AsyncCursor[Any], index: int, item: Item) -> bool:
        # One savepoint per item would let the batch go on past it; instead the whole
        # transaction is rolled back and the runtime applies the batch again without the item.
        try:
            operations = project(item)
            changed = not operations
            for operation in operations:
                changed |= await _apply_operation(cursor, operation)
        except POISON as error:
            raise _ItemFailed(index, error) from error
        return changed

    # --- Operations (`projections.operations`: replay, lag, dlq retry) ---------------------

    async def set_checkpoints(self, topic: str, offsets: dict[int, int]) -> None:
        """Overwrite the checkpoints of `topic` (last offset accounted for; -1: none yet).
        Only while the projector is stopped: a running one would write its own over them."""
        async def write(connection: psycopg.AsyncConnection[Any]) -> None:
            async with connection.transaction(), connection.cursor() as cursor:
                await cursor.executemany(CHECKPOINT, [
                    (self._projector, topic, partition, offset)
                    for partition, offset in sorted(offsets.items())])
        await self._guarded(write)

    async def blocked(self) -> dict[str, tuple[str, int, int]]:
        """Blocked stream → (topic, partition, offset) of the dead-lettered record blocking it."""
        async def read(connection: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
            async with connection.transaction():
                cursor = await connection.execute(
                    'SELECT stream_id, topic, partition, "offset" FROM projection_blocked_streams'
                    " WHERE projector = %s", (self._projector,))
                return {row[0]: (row[1], row[2], row[3]) for row in await cursor.fetchall()}
        result: dict[str, tuple[str, int, int]] = await self._guarded(read)
        return result

    async def parked_records(self, stream_id: str | None = None) -> list[SourceRecord]:
        """The records parked behind blocked streams (of `stream_id` only, if given), in
        (topic, partition, offset) order; their headers are not kept (empty)."""
        async def read(connection: psycopg.AsyncConnection[Any]) -> list[SourceRecord]:
            async with connection.transaction():
                cursor = await connection.execute(
                    'SELECT topic, partition, "offset", key, value FROM projection_parked'
                    " WHERE projector = %s AND (%s::text IS NULL OR stream_id = %s)"
                    ' ORDER BY topic, partition, "offset"',
                    (self._projector, stream_id, stream_id))
                return [SourceRecord(row[0], row[1], row[2], row[3], row[4])
                        for row in await cursor.fetchall()]
        result: list[SourceRecord] = await self._guarded(read)
        return result

    async def release(self, stream_id: str, items: list[Item]) -> Applied:
        """Apply `items` (the stream's dead-lettered event and its parked successors, in stream
        order) and unblock `stream_id`, in one transaction; `PoisonEvent` if one still fails
        (nothing changed then)."""
        async def write(connection: psycopg.AsyncConnection[Any]) -> Applied:
            applied = 0
            async with connection.transaction(), connection.cursor() as cursor:
                if self._swap_guard:
                    await cursor.execute(SWAP_LOCK_SHARED, (SWAP_LOCK, self._schema))
                for index, item in enumerate(items):
                    applied += await self._apply_item(cursor, index, item)
                await _unblock(cursor, self._projector, [stream_id])
            return Applied(applied=applied, skipped=len(items) - applied)
        try:
            result: Applied = await self._guarded(write)
        except _ItemFailed as failed:
            raise PoisonEvent(failed.index, failed.cause) from failed.cause
        return result

    # --- ReadModel -----------------------------------------------------------------------

    async def _rows(self, query: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        """The query's rows; `TransientError` (unavailable) while the read model is missing or
        not open to this role (the query role reads only what the owner migrated and granted)."""
        async def read(connection: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
            async with connection.transaction(), connection.cursor(row_factory=dict_row) as cur:
                await cur.execute(query.encode(), params)
                return await cur.fetchall()
        try:
            rows: list[dict[str, Any]] = await self._guarded(read)
        except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege) as error:
            raise TransientError(
                f"the read model is missing or not open to this role "
                f"({error.diag.message_primary}): start `cqrs project postgres` for this prefix, "
                "and on secure services run `cqrs access apply` as admin first") from error
        return rows

    async def user(self, user_id: str) -> User | None:
        rows = await self._rows("SELECT * FROM users WHERE id = %s", (user_id,))
        return User.model_validate(rows[0]) if rows else None

    async def forgotten(self, user_id: str) -> int | None:
        rows = await self._rows("SELECT version FROM forgotten_users WHERE id = %s", (user_id,))
        return int(rows[0]["version"]) if rows else None

    async def order(self, order_id: str) -> Order | None:
        rows = await self._rows("SELECT * FROM orders WHERE id = %s", (order_id,))
        return Order.model_validate(rows[0]) if rows else None

    async def orders_for_user(self, user_id: str) -> list[Order]:
        rows = await self._rows("SELECT * FROM orders WHERE customer_id = %s", (user_id,))
        return [Order.model_validate(row) for row in rows]

    async def user_stats(self, now: datetime) -> UserStats:
        day, week = period_starts(now)
        rows = await self._rows(
            "SELECT count(*) AS total, count(*) FILTER (WHERE active) AS active,"
            " count(*) FILTER (WHERE created_at >= %s) AS new_today,"
            " count(*) FILTER (WHERE created_at >= %s) AS new_this_week FROM users", (day, week))
        return UserStats.model_validate(rows[0])


async def _unblock(cursor: psycopg.AsyncCursor[Any], projector: str,
                   stream_ids: Sequence[str]) -> None:
    """Delete the streams' parked records and blocks: they are released."""
    for table in ("projection_parked", "projection_blocked_streams"):
        await cursor.execute(
            sql.SQL("DELETE FROM {} WHERE projector = %s AND stream_id = ANY(%s)").format(
                sql.Identifier(table)), (projector, list(stream_ids)))


async def _apply_folded(cursor: psycopg.AsyncCursor[Any], items: Sequence[Item]) -> int:
    """Read the rows the items touch, fold the items onto them in memory and write each changed
    row once; returns how many items changed the read model. Raises `_Replay` (the caller rolls
    back) for poison, whose index only the item-by-item path reports exactly, and when the
    guards let fewer rows through than the fold expected (another writer moved one)."""
    try:
        operations = [project(item) for item in items]
        keys = {row_key(op) for ops in operations for op in ops}
        keys |= {key for ops in operations for op in ops if (key := customer_key(op))}
        await lock_users(cursor, (op for ops in operations for op in ops))
        current = await read_rows(cursor, keys)
        folded = fold(operations, current)
        written = await write_rows(cursor, folded.rows)
    except (FoldFailed, *POISON) as error:
        raise _Replay from error
    if written != len(folded.rows):
        raise _Replay
    return folded.applied


async def _apply_operation(cursor: psycopg.AsyncCursor[Any], operation: RowOp) -> bool:
    """Read the row (locked), evolve it by the rule and write it back behind the version guard;
    `True` when that changed the row, `False` when the guard kept it (already applied)."""
    key, customer = row_key(operation), customer_key(operation)
    await lock_users(cursor, [operation])
    rows = await read_rows(cursor, [key] if customer is None else [key, customer])
    if customer is not None:
        operation = unlinked(operation, rows.get(customer))
    after = evolve_row(rows.get(key), operation)
    return after is not None and await write_row(cursor, key, after)
