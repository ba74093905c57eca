"""A projector's liveness and readiness, set from its event loop and read from the HTTP thread.

Ready: the store started, partitions assigned and seeked to their checkpoints (a rebalance has
completed), no rebalance under way, and no transient fault being retried (store or broker
unreachable). Live: the agent's loop made progress within `LIVE_WITHIN` seconds; a loop waiting
for records is idle, not stuck (the app's refresh timer beats for it while it waits, which also
proves the event loop turns). A batch that stays in one await, without a retry, for longer is
stuck. Each field is one attribute, written by one side: no lock is needed for these reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from observability import Verdict

LIVE_WITHIN = 60.0
"""Seconds without progress after which the projector is reported not live."""


class ProjectorHealth:
    """Liveness and readiness of one projector process; an `observability.HealthCheck`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 live_within: float = LIVE_WITHIN) -> None:
        self._clock = clock
        self._live_within = live_within
        self._last_beat = clock()
        self._busy = False
        self.store_started = False
        self.assigned = False
        self.rebalancing = False
        self.fault: str | None = None

    def beat(self) -> None:
        """The loop made progress (a batch began or ended, a retry was attempted)."""
        self._last_beat = self._clock()

    def idle_beat(self) -> None:
        """A beat from the event loop's timer: counts only while no batch is in progress."""
        if not self._busy:
            self.beat()

    def busy(self, busy: bool) -> None:
        self._busy = busy
        self.beat()

    def liveness(self) -> Verdict:
        silent = self._clock() - self._last_beat
        if silent > self._live_within:
            doing = "a batch" if self._busy else "the event loop"
            return Verdict(False, f"no progress for {silent:.0f}s (in {doing})")
        return Verdict(True, "batch in progress" if self._busy else "waiting for records")

    def readiness(self) -> Verdict:
        if not self.store_started:
            return Verdict(False, "starting the store")
        if self.rebalancing:
            return Verdict(False, "rebalancing")
        if not self.assigned:
            return Verdict(False, "waiting for partition assignment")
        if self.fault is not None:
            return Verdict(False, self.fault)
        return Verdict(True, "started")
