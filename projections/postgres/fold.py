"""A batch's row operations folded in memory onto the rows they touch, with the stores' guards.

Pure. Given the current rows (read once per batch) and each item's operations in batch order, it
decides what the guarded statements would do one by one: a `Put*` applies where the row is
missing or older, a `Patch` where the row is older, a `Patch` of a missing row is an impossible
history. The result is the latest state of every changed row (one write per row) and, per item,
whether it changed the read model; an item with no operation counts as changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.domain.errors import InvalidHistory
from projections.postgres.projector import Patch, PutOrder, PutUser, RowOp

PATCHABLE = {"users": {"email", "name", "active"},
             "orders": {"status", "payment_ref", "tracking"}}

Row = dict[str, Any]
RowKey = tuple[str, str]
"""`(table, id)`."""


class FoldFailed(Exception):
    """Item `index` can never apply (`cause`: `InvalidHistory`); nothing of the fold is kept."""

    def __init__(self, index: int, cause: BaseException) -> None:
        super().__init__(f"item {index}: {cause}")
        self.index, self.cause = index, cause


@dataclass(frozen=True)
class Folded:
    """The rows to write (latest state, keyed by `(table, id)`) and how many items changed."""

    rows: dict[RowKey, Row]
    applied: int


def row_key(operation: RowOp) -> RowKey:
    if isinstance(operation, PutUser):
        return ("users", operation.user_id)
    if isinstance(operation, PutOrder):
        return ("orders", operation.order_id)
    return (operation.table, operation.row_id)


def fold(operations: Sequence[Sequence[RowOp]], current: Mapping[RowKey, Row]) -> Folded:
    """Fold each item's `operations`, in order, onto `current` (rows absent from it do not exist).

    Raises `FoldFailed` at the first item whose operation patches a missing row, and `ValueError`
    for a patch of columns that may not be patched (a bug in the projector).
    """
    rows: dict[RowKey, Row] = {}
    applied = 0
    for index, item_operations in enumerate(operations):
        changed = not item_operations
        for operation in item_operations:
            key = row_key(operation)
            row = rows.get(key, current.get(key))
            try:
                after = _after(operation, row)
            except InvalidHistory as error:
                raise FoldFailed(index, error) from error
            if after is not None:
                rows[key] = after
                changed = True
        applied += changed
    return Folded(rows, applied)


def _after(operation: RowOp, row: Row | None) -> Row | None:
    """The row once `operation` applied, or `None` where its guard keeps the row as it is."""
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
    # An upsert of an existing order keeps its payment reference and tracking number.
    return {"id": operation.order_id, "customer_id": operation.customer_id,
            "items": operation.items, "total": operation.total, "currency": operation.currency,
            "status": operation.status, "payment_ref": row["payment_ref"] if row else None,
            "tracking": row["tracking"] if row else None, **stamp}
