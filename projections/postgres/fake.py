"""`FakeStore`: the postgres store's contract in memory, for tests.

Same rule (`fold.evolve_row`, through `fold`), same guards, same atomicity (a batch that raises
changes nothing), and the values PostgreSQL refuses (`_storable`) are poison here too.
"""

from __future__ import annotations

from collections import ChainMap
from datetime import datetime
from typing import Any

from projections.fake_tracking import FakeTracking
from projections.postgres.fold import FoldFailed, Row, RowKey, fold, is_forgotten
from projections.postgres.models import Order, User, UserStats, period_starts
from projections.postgres.projector import project
from projections.runtime.errors import PoisonEvent, TransientError
from projections.runtime.records import Applied, Batch
from topics import InvalidHistory


class FakeStore(FakeTracking):
    """Implements `Store` and the queries' `ReadModel`; `fail_next` injects transient faults."""

    def __init__(self) -> None:
        super().__init__()
        self.users: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.forgotten_rows: dict[str, dict[str, Any]] = {}
        """Forgotten users' markers (`forgotten_users`), by id."""
        self.fail_next = 0

    async def apply(self, batch: Batch) -> Applied:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise TransientError("injected fault")
        tables = {"users": self.users, "orders": self.orders}
        stored: dict[RowKey, Row] = {
            (table, row_id): row for table, rows in tables.items() for row_id, row in rows.items()}
        stored.update({("users", user_id): row for user_id, row in self.forgotten_rows.items()})
        changed: dict[RowKey, Row] = {}
        current = ChainMap(changed, stored)
        applied = 0
        for index, item in enumerate(batch.items):
            try:
                operations = project(item)
                _storable(operations)
                folded = fold([operations], current)
            except FoldFailed as failed:
                raise PoisonEvent(index, failed.cause) from failed.cause
            except (InvalidHistory, ValueError) as error:
                raise PoisonEvent(index, error) from error
            changed.update(folded.rows)
            applied += folded.applied
        for (table, row_id), row in changed.items():
            if is_forgotten(row):
                self.users.pop(row_id, None)
                self.forgotten_rows[row_id] = row
            else:
                tables[table][row_id] = row
        for order in self.orders.values():
            if order["customer_id"] in self.forgotten_rows:
                order["customer_id"] = None
        self.track(batch, forward_only=False)  # the checkpoint upsert overwrites
        return Applied(applied=applied, skipped=len(batch.items) - applied)

    async def user(self, user_id: str) -> User | None:
        row = self.users.get(user_id)
        return User.model_validate(row) if row else None

    async def forgotten(self, user_id: str) -> int | None:
        marker = self.forgotten_rows.get(user_id)
        return None if marker is None else int(marker["version"])

    async def order(self, order_id: str) -> Order | None:
        row = self.orders.get(order_id)
        return Order.model_validate(row) if row else None

    async def orders_for_user(self, user_id: str) -> list[Order]:
        return [Order.model_validate(r) for r in self.orders.values()
                if r["customer_id"] == user_id]

    async def user_stats(self, now: datetime) -> UserStats:
        day, week = period_starts(now)
        rows = list(self.users.values())
        return UserStats(
            total=len(rows), active=sum(r["active"] for r in rows),
            new_today=sum(r["created_at"] >= day for r in rows),
            new_this_week=sum(r["created_at"] >= week for r in rows))


BIGINT = (-(2**63), 2**63 - 1)


def _storable(value: Any) -> None:
    """Refuse what PostgreSQL refuses (as `ValueError`): NUL in text, integers beyond bigint."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text cannot contain NUL (0x00)")
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not BIGINT[0] <= value <= BIGINT[1]:
            raise ValueError(f"{value} is out of range for bigint")
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key)
            _storable(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _storable(item)
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            _storable(getattr(value, name))

