"""The one rule of a read-model row (`evolve_row`), and a batch folded with it in memory.

Pure. `evolve_row` is how a `users` or `orders` row changes under one row operation, guard
included: the batch fold, the fake store and the store's item-by-item path all call it, and the
SQL only adds the same version guard (`WHERE t.version < EXCLUDED.version`) to what it computed.
`fold` applies a batch's operations, item by item in order, onto the current rows (read once per
batch, with the customers of the orders created): the latest state of every changed row (one write
per row) and how many items changed the read model; an item with no operation counts as changed.
An order created for a forgotten customer is written without its customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from projections.postgres.projector import Forget, Patch, PutOrder, PutUser, RowOp
from topics import InvalidHistory

PATCHABLE = {"users": {"email", "name", "active"},
             "orders": {"status", "payment_ref", "tracking"}}

Row = dict[str, Any]
RowKey = tuple[str, str]
"""`(table, id)`."""


class FoldFailed(Exception):
    """Item `index` can never apply (`cause`: `InvalidHistory` or `ValueError`); nothing of the
    fold is kept."""

    def __init__(self, index: int, cause: BaseException) -> None:
        super().__init__(f"item {index}: {cause}")
        self.index, self.cause = index, cause


@dataclass(frozen=True)
class Folded:
    """The rows to write (latest state, keyed by `(table, id)`) and how many items changed."""

    rows: dict[RowKey, Row]
    applied: int


def row_key(operation: RowOp) -> RowKey:
    if isinstance(operation, PutUser | Forget):
        return ("users", operation.user_id)
    if isinstance(operation, PutOrder):
        return ("orders", operation.order_id)
    return (operation.table, operation.row_id)


def marker_row(user_id: str, version: int, forgotten_at: Any) -> Row:
    """A forgotten user's marker as a row of the fold (`forgotten_users`: no personal data)."""
    return {"id": user_id, "forgotten": True, "forgotten_at": forgotten_at, "version": version}


def is_forgotten(row: Row | None) -> bool:
    """Whether `row` is a forgotten user's marker (`forgotten_users`), not a `users` row."""
    return row is not None and bool(row.get("forgotten"))


def customer_key(operation: RowOp) -> RowKey | None:
    """The user row an order's creation must read: its customer may be forgotten."""
    if isinstance(operation, PutOrder) and operation.customer_id is not None:
        return ("users", operation.customer_id)
    return None


def unlinked(operation: RowOp, customer: Row | None) -> RowOp:
    """`operation`, without its customer when it creates an order for a forgotten one."""
    if isinstance(operation, PutOrder) and is_forgotten(customer):
        return replace(operation, customer_id=None)
    return operation


def evolve_row(row: Row | None, operation: RowOp) -> Row | None:
    """The row once `operation` applied to `row` (`None`: no such row yet), or `None` where the
    version guard keeps the row as it is (its version is not below the operation's).

    A `Put*` inserts or overwrites the row, keeping its `created_at` and, for an order, its
    `payment_ref` and `tracking`; a `Patch` sets only its columns. Every event of a stream changes
    its row, so a row's version is its stream's: an operation more than one version ahead of the
    row (or than 0, for a missing row) follows a gap, as the search document rule also decides.
    Raises `InvalidHistory` for a gap and for a patch of a missing row, `ValueError` for a patch
    of columns that may not be patched.

    A `Forget` turns the user row (or no row) into the forgotten marker `{"id", "forgotten",
    "forgotten_at", "version"}` at any version: the stream's earlier events are erased from the
    log, so no gap is checked. Every older event of a forgotten user is then already applied
    (the row never comes back, whatever a replay reads), and a newer one is an impossible
    history.
    """
    if isinstance(operation, Forget):
        if row is not None and row["version"] >= operation.version:
            return None
        return marker_row(operation.user_id, operation.version, operation.at)
    if is_forgotten(row):
        assert row is not None
        if operation.version <= row["version"]:
            return None
        raise InvalidHistory(f"user {row['id']!r} was forgotten at version {row['version']}: "
                             f"version {operation.version} cannot follow")
    known = row["version"] if row is not None else 0
    if operation.version > known + 1:
        raise InvalidHistory(f"{row_key(operation)[0]} row {row_key(operation)[1]!r} is at "
                             f"version {known}: version {operation.version} follows a gap")
    if isinstance(operation, Patch):
        if not set(operation.changes) <= PATCHABLE[operation.table]:
            raise ValueError(f"cannot patch {sorted(operation.changes)} of {operation.table}")
        if row is None:
            raise InvalidHistory(f"{operation.table} row {operation.row_id!r} does not exist for "
                                 f"version {operation.version}")
        if row["version"] >= operation.version:
            return None
        return {**row, **operation.changes, "updated_at": operation.at,
                "version": operation.version}
    if row is not None and row["version"] >= operation.version:
        return None
    stamp = {"created_at": row["created_at"] if row else operation.at,
             "updated_at": operation.at, "version": operation.version}
    if isinstance(operation, PutUser):
        return {"id": operation.user_id, "email": operation.email, "name": operation.name,
                "active": operation.active, **stamp}
    return {"id": operation.order_id, "customer_id": operation.customer_id,
            "items": operation.items, "total": operation.total, "currency": operation.currency,
            "status": operation.status, "payment_ref": row["payment_ref"] if row else None,
            "tracking": row["tracking"] if row else None, **stamp}


def fold(operations: Sequence[Sequence[RowOp]], current: Mapping[RowKey, Row]) -> Folded:
    """Fold each item's `operations`, in order, onto `current` (rows absent from it do not exist)
    with `evolve_row`. Raises `FoldFailed` at the first item that can never apply."""
    rows: dict[RowKey, Row] = {}
    applied = 0
    for index, item_operations in enumerate(operations):
        changed = not item_operations
        for operation in item_operations:
            customer = customer_key(operation)
            if customer is not None:
                operation = unlinked(operation, rows.get(customer, current.get(customer)))
            key = row_key(operation)
            try:
                after = evolve_row(rows.get(key, current.get(key)), operation)
            except (InvalidHistory, ValueError) as error:
                raise FoldFailed(index, error) from error
            if after is not None:
                rows[key] = after
                changed = True
        applied += changed
    return Folded(rows, applied)
