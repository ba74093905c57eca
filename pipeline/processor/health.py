"""Liveness and readiness of one processor process, as the loop reports them.

Ready: partitions assigned (possibly none, when the group has more members than partitions) and
their states restored, and no producer being recovered. Not ready before the first assignment,
after a revocation that left no partition until the next assignment (a rebalance; a cooperative
one that keeps some partitions keeps the process ready), during a restore, while a new producer
replaces a failed one, and once stopped. Alive: the loop began an iteration less than
`LIVENESS_S` ago, or a restore runs (it may last longer, up to the restore timeout). The loop
thread writes, the HTTP thread reads; each field is one assignment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from observability import Verdict

LIVENESS_S = 60.0


class ProcessorHealth:
    """What the processor's `/livez` and `/readyz` answer (see the module docstring); an
    `observability.HealthCheck`."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic,
                 restore_limit_s: float | None = None) -> None:
        """`restore_limit_s`: the longest an assignment's restore may keep the loop from
        iterating and still count as alive (none: any)."""
        self._monotonic = monotonic
        self._restore_limit_s = restore_limit_s
        self._last_iteration = monotonic()
        self._assigned: list[int] | None = None
        self._rebalancing = False
        self._restoring = False
        self._recovering = False
        self._stopped = False

    def iterated(self) -> None:
        self._last_iteration = self._monotonic()

    def revoked(self, remaining: list[int]) -> None:
        """Partitions were revoked; `remaining` are still owned (a cooperative rebalance)."""
        self._assigned = sorted(remaining)
        self._rebalancing = not remaining

    def assigned(self, owned: list[int]) -> None:
        """An assignment completed; `owned` is every partition owned now."""
        self._assigned = sorted(owned)
        self._rebalancing = False

    def stopped(self) -> None:
        self._stopped = True

    @contextmanager
    def restoring(self) -> Iterator[None]:
        self._restoring = True
        try:
            yield
        finally:
            self._restoring = False

    @contextmanager
    def recovering(self) -> Iterator[None]:
        self._recovering = True
        try:
            yield
        finally:
            self._recovering = False

    def liveness(self) -> Verdict:
        idle = self._monotonic() - self._last_iteration
        if self._stopped:
            return Verdict(False, "stopped")
        if self._restoring and (self._restore_limit_s is None or idle < self._restore_limit_s):
            # A restore is progress (bounded by the restore timeout) with no loop iteration.
            return Verdict(True, "restoring stream states")
        if idle >= LIVENESS_S:
            return Verdict(False, f"no loop iteration for {idle:.0f} s")
        return Verdict(True, f"last loop iteration {idle:.1f} s ago")

    def readiness(self) -> Verdict:
        for flag, reason in (
            (self._stopped, "stopped"),
            (self._assigned is None, "waiting for a partition assignment"),
            (self._recovering, "recovering the producer"),
            (self._rebalancing, "rebalancing"),
            (self._restoring, "restoring stream states"),
        ):
            if flag:
                return Verdict(False, reason)
        return Verdict(True, f"partitions {self._assigned}")
